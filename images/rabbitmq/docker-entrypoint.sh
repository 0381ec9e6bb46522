#!/bin/bash
# Entrypoint of sprocket-local/rabbitmq, with the interface of the upstream rabbitmq
# image's: rabbitmq-server started as root drops to the rabbitmq user after taking
# ownership of the data folder; the Erlang cookie is created on first start in
# $HOME (= /var/lib/rabbitmq), mode 0400, or taken from RABBITMQ_ERLANG_COOKIE.
# The node name is rabbit@<hostname>: give the service a fixed hostname, since the
# data folder is per node name.
set -euo pipefail

cookie_file="$HOME/.erlang.cookie"

if [[ "${1:-}" == rabbitmq-server && "$(id -u)" == 0 ]]; then
  find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq '{}' +
  # Make the cookie now, owned by rabbitmq: a CLI tool run as root (a healthcheck's
  # `rabbitmq-diagnostics ping` via docker exec) before the server made it would
  # otherwise create it owned by root, and the server then fails with eacces.
  if [[ -z "${RABBITMQ_ERLANG_COOKIE:-}" && ! -e "$cookie_file" ]]; then
    cookie=$(head -c 4096 /dev/urandom | tr -dc 'A-Z')
    (umask 0277 && printf '%s' "${cookie:0:20}" >"$cookie_file")
    chown rabbitmq:rabbitmq "$cookie_file"
  fi
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi

if [[ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]]; then
  # Deprecated upstream too, but still honoured by rabbitmq 3.10's scripts.
  if [[ -e "$cookie_file" && "$(cat "$cookie_file")" != "$RABBITMQ_ERLANG_COOKIE" ]]; then
    echo "rabbitmq: $cookie_file differs from RABBITMQ_ERLANG_COOKIE; replacing it" >&2
  fi
  rm -f "$cookie_file"
  printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$cookie_file"
  chmod 0400 "$cookie_file"
fi

exec "$@"
