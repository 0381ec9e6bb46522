#!/bin/sh
# As upstream n8n 1.64's /docker-entrypoint.sh: arguments go to n8n (`n8n start` without).
# Custom CA certificates in /opt/custom-certificates: upstream hashes that folder with
# c_rehash and sets SSL_CERT_DIR + --use-openssl-ca; there is no openssl tool here, so the
# certificates (*.pem, *.crt) are joined into one file for NODE_EXTRA_CA_CERTS instead
# (trusted in addition to node's bundled CAs).
if [ -d /opt/custom-certificates ]; then
  echo "Trusting custom certificates from /opt/custom-certificates."
  bundle=$(mktemp /tmp/custom-certificates.XXXXXX)
  for f in /opt/custom-certificates/*.pem /opt/custom-certificates/*.crt; do
    [ -f "$f" ] && cat "$f" >>"$bundle"
  done
  export NODE_EXTRA_CA_CERTS="$bundle"
fi

if [ "$#" -gt 0 ]; then
  # Got started with arguments
  exec n8n "$@"
else
  # Got started without arguments
  exec n8n
fi
