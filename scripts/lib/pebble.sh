# shellcheck shell=bash
# Pebble (Let's Encrypt's ACME test server, Debian's `pebble` 2.4) outside the swarm, standing in
# for Let's Encrypt: Traefik in swarm tasks gets real certificates from it through HTTP-01.
# Source this file:
#
#   source scripts/lib/pebble.sh
#   pebble_ensure                   # install pebble once, start (or confirm) pebble-challtestsrv
#                                   #   (mock DNS) and pebble; waits until /dir answers
#   pebble_stop                     # SIGTERM both (SIGKILL after SPROCKET_PEBBLE_STOP_WAIT s)
#   pebble_destroy                  # pebble_stop, then remove the state directory
#   pebble_directory_url_for_tasks  # https://host.docker.internal:<port>/dir (Traefik's caServer)
#   pebble_directory_url            # https://<bind address>:<port>/dir (the same, from the host)
#   pebble_root_pem FILE            # write the root that issues Pebble's certificates into FILE
#   pebble_api_ca                   # path of the CA pem that signed Pebble's API certificate
#                                   #   (Traefik: acme.caCertificates=<it>)
#
# Variables (read when a function runs, defaults in brackets):
#   SPROCKET_PEBBLE_DIR [/var/lib/sprocket-pebble]  state directory (0700): pebble-config.json,
#                                      api-key.pem/api-cert.pem (copies, or generated ones),
#                                      *.log, *.pid, *.args
#   SPROCKET_PEBBLE_PORT [14000]       ACME API (https, /dir)
#   SPROCKET_PEBBLE_MGMT_PORT [15000]  Pebble's management API (https: /roots/0, /intermediates/0)
#   SPROCKET_PEBBLE_BIND [docker0's gateway, when the API certificate names it; else 0.0.0.0]
#                                      address both Pebble ports listen on (see below)
#   SPROCKET_PEBBLE_HTTP_PORT [80]     port Pebble sends HTTP-01 validations to: the one Traefik
#                                      serves HTTP on (its `web` entrypoint)
#   SPROCKET_PEBBLE_TLS_PORT [443]     port Pebble would dial for TLS-ALPN-01 (it never listens)
#   SPROCKET_PEBBLE_CHALLENGE_IPV4 [127.0.0.1]  the A record the mock DNS gives every name: where
#                                      the host reaches Traefik's HTTP port
#   SPROCKET_PEBBLE_DNS_PORT [8053]    pebble-challtestsrv's DNS (udp+tcp, 127.0.0.1)
#   SPROCKET_PEBBLE_DNS_MGMT_PORT [8055]  its management HTTP API (127.0.0.1; cannot be disabled)
#   SPROCKET_PEBBLE_CERT_SECONDS []    validity of issued certificates in seconds (unset: Pebble's
#                                      default, 157766400 s = 5 years); e.g. 120 for renewal tests
#   SPROCKET_PEBBLE_API_CERT [committed]  `committed`: the API serves scripts/lib/pebble/api-*.pem,
#                                      signed by examples/sprocket/config/pebble-api-ca.pem;
#                                      `generated`: a CA + leaf made with openssl in the state
#                                      directory (CA key discarded), SANs with docker0's address
#   SPROCKET_PEBBLE_WAIT [30]          seconds to wait for the API to answer
#   SPROCKET_PEBBLE_STOP_WAIT [10]     seconds between SIGTERM and SIGKILL
#
# Facts this relies on (measured with Debian's pebble 2.4.0 and Traefik 3.7.15 on the host):
# - The package ships no API certificate (the sample config points at test/certs/, not
#   installed). The committed leaf (ECDSA P-256, 10 years, SANs host.docker.internal,
#   localhost, 127.0.0.1, 172.17.0.1) is public and test-only, as Pebble's own
#   test/certs/localhost/key.pem is; the CA's key was discarded after signing, so nobody can
#   mint other certificates under the committed CA. Tasks use the name host.docker.internal, so
#   the leaf fits whatever docker0's address is.
# - Pebble (Go's ListenAndServeTLS) takes one listen address per port. It listens on docker0's
#   gateway, which tasks reach as host.docker.internal (`host-gateway`) and the host reaches as
#   one of its own addresses, whenever the API certificate names that address (the committed
#   one names 172.17.0.1); else on 0.0.0.0, which also serves every other interface — mind
#   that the management port hands out the issuing CA's private keys (/root-keys/0): test only.
# - Directory URLs are built from the request's Host, so tasks and the host each get URLs they
#   can reach. Pebble's state (accounts, orders, issuing root and intermediate) is in memory and
#   new on every start: restarting it invalidates ACME accounts kept by clients (Traefik's
#   acme.json) and the root from pebble_root_pem. pebble_ensure restarts it only when its
#   configuration changed.
# - Pebble resolves challenge names through `-dnsserver` (pebble-challtestsrv here), asking AAAA
#   before A and dialing the first answer: challtestsrv answers AAAA with ::1 unless
#   -defaultIPv6 is empty, so it is given an empty one (IPv4 only). It accepts any name made of
#   [a-zA-Z0-9.-] (one leading `*.` for wildcards), at most 253 characters, not an IP address,
#   not ending in a dot: *.test, *.localhost, *.internal and single-label names all pass (no
#   public-suffix check). PEBBLE_VA_NOSLEEP=1 removes its random 0-5 s validation sleep.
#   Wildcards need DNS-01: with HTTP-01 Traefik logs "could not determine solvers".
# - Traefik 3.7: `--certificatesresolvers.le.acme.caserver=$(pebble_directory_url_for_tasks)`,
#   `--certificatesresolvers.le.acme.cacertificates=$(pebble_api_ca)` (a comma list; the env
#   LEGO_CA_CERTIFICATES=<path> works too), httpchallenge.entrypoint=web; an entrypoint
#   redirection web -> websecure does not hurt HTTP-01. First certificate ~3.5 s after Traefik
#   starts. Traefik renews every renewInterval when NotAfter < now + renewPeriod, both derived
#   from acme.certificatesDuration (hours): 2160 (default) -> 30 days / daily, so a short-lived
#   certificate just expires; 1 (< 24) -> 20 min / every minute, so certificates shorter than
#   20 min are renewed every minute (SPROCKET_PEBBLE_CERT_SECONDS=120 -> a new one each minute).
#   After a Pebble restart delete acme.json: its account gives accountDoesNotExist and its
#   certificates chain to the old root.
#
# Every function fails loudly (message on stderr, non-zero return) and never skips silently.

_pebble_log() { printf '[pebble] %s\n' "$*" >&2; }
_pebble_die() { printf '[pebble] ERROR: %s\n' "$*" >&2; return 1; }

_PEBBLE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_PEBBLE_REPO=$(cd "$_PEBBLE_LIB_DIR/../.." && pwd)
_PEBBLE_COMMITTED_CA=$_PEBBLE_REPO/examples/sprocket/config/pebble-api-ca.pem
_PEBBLE_COMMITTED_KEY=$_PEBBLE_LIB_DIR/pebble/api-key.pem
_PEBBLE_COMMITTED_CERT=$_PEBBLE_LIB_DIR/pebble/api-cert.pem
_PEBBLE_BIN=/usr/bin/pebble
_PEBBLE_CHALLSRV_BIN=/usr/bin/pebble-challtestsrv

# apt-get install and docker0's address: engine.sh's.
# shellcheck source-path=SCRIPTDIR source=engine.sh
source "$_PEBBLE_LIB_DIR/engine.sh"
_pebble_apt_install() { _engine_apt_install "$@"; }

_pebble_is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 >= 1 && $1 <= 65535 )); }

# Resolves the variables above (defaults) and validates them; sets the derived paths.
_pebble_settings() {
    local v p q
    SPROCKET_PEBBLE_DIR=${SPROCKET_PEBBLE_DIR:-/var/lib/sprocket-pebble}
    SPROCKET_PEBBLE_PORT=${SPROCKET_PEBBLE_PORT:-14000}
    SPROCKET_PEBBLE_MGMT_PORT=${SPROCKET_PEBBLE_MGMT_PORT:-15000}
    SPROCKET_PEBBLE_API_CERT=${SPROCKET_PEBBLE_API_CERT:-committed}
    if [[ -z "${SPROCKET_PEBBLE_BIND:-}" ]]; then
        # docker0's gateway where the API certificate names it (tasks and the host both reach
        # it there, and nothing else does); every interface otherwise.
        SPROCKET_PEBBLE_BIND=$(_pebble_gateway)
        [[ "$SPROCKET_PEBBLE_API_CERT" == generated || "$SPROCKET_PEBBLE_BIND" == 172.17.0.1 ]] \
            || SPROCKET_PEBBLE_BIND=0.0.0.0
    fi
    SPROCKET_PEBBLE_HTTP_PORT=${SPROCKET_PEBBLE_HTTP_PORT:-80}
    SPROCKET_PEBBLE_TLS_PORT=${SPROCKET_PEBBLE_TLS_PORT:-443}
    SPROCKET_PEBBLE_CHALLENGE_IPV4=${SPROCKET_PEBBLE_CHALLENGE_IPV4:-127.0.0.1}
    SPROCKET_PEBBLE_DNS_PORT=${SPROCKET_PEBBLE_DNS_PORT:-8053}
    SPROCKET_PEBBLE_DNS_MGMT_PORT=${SPROCKET_PEBBLE_DNS_MGMT_PORT:-8055}
    SPROCKET_PEBBLE_CERT_SECONDS=${SPROCKET_PEBBLE_CERT_SECONDS:-}
    SPROCKET_PEBBLE_WAIT=${SPROCKET_PEBBLE_WAIT:-30}
    SPROCKET_PEBBLE_STOP_WAIT=${SPROCKET_PEBBLE_STOP_WAIT:-10}
    if [[ "$SPROCKET_PEBBLE_DIR" != /?* || "$SPROCKET_PEBBLE_DIR" == *[[:space:]\'\"\\]* ]]; then
        _pebble_die "SPROCKET_PEBBLE_DIR='$SPROCKET_PEBBLE_DIR' must be an absolute path without spaces, quotes or backslashes"; return 1
    fi
    SPROCKET_PEBBLE_DIR=${SPROCKET_PEBBLE_DIR%/}
    for v in PORT MGMT_PORT HTTP_PORT TLS_PORT DNS_PORT DNS_MGMT_PORT; do
        p=SPROCKET_PEBBLE_$v
        _pebble_is_port "${!p}" || { _pebble_die "$p='${!p}' is not a port number"; return 1; }
    done
    # The ports we listen on must differ from each other and from the one Traefik serves.
    for p in SPROCKET_PEBBLE_PORT SPROCKET_PEBBLE_MGMT_PORT SPROCKET_PEBBLE_DNS_PORT SPROCKET_PEBBLE_DNS_MGMT_PORT; do
        for q in SPROCKET_PEBBLE_PORT SPROCKET_PEBBLE_MGMT_PORT SPROCKET_PEBBLE_DNS_PORT SPROCKET_PEBBLE_DNS_MGMT_PORT SPROCKET_PEBBLE_HTTP_PORT; do
            if [[ "$p" != "$q" && "${!p}" == "${!q}" ]]; then
                _pebble_die "$p and $q are both ${!p}; pick distinct ports"; return 1
            fi
        done
    done
    for v in BIND CHALLENGE_IPV4; do
        p=SPROCKET_PEBBLE_$v
        [[ "${!p}" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || { _pebble_die "$p='${!p}' is not an IPv4 address"; return 1; }
    done
    if [[ -n "$SPROCKET_PEBBLE_CERT_SECONDS" ]] \
        && { [[ ! "$SPROCKET_PEBBLE_CERT_SECONDS" =~ ^[1-9][0-9]{0,9}$ ]] || (( SPROCKET_PEBBLE_CERT_SECONDS < 2 )); }; then
        _pebble_die "SPROCKET_PEBBLE_CERT_SECONDS='$SPROCKET_PEBBLE_CERT_SECONDS' must be a number of seconds from 2 to 9999999999 (or unset)"; return 1
    fi
    case "$SPROCKET_PEBBLE_API_CERT" in
        committed | generated) ;;
        *) _pebble_die "SPROCKET_PEBBLE_API_CERT='$SPROCKET_PEBBLE_API_CERT' must be committed or generated"; return 1 ;;
    esac
    for v in WAIT STOP_WAIT; do
        p=SPROCKET_PEBBLE_$v
        [[ "${!p}" =~ ^[0-9]+$ ]] || { _pebble_die "$p='${!p}' is not a number of seconds"; return 1; }
    done
    _PEBBLE_CONF=$SPROCKET_PEBBLE_DIR/pebble-config.json
    _PEBBLE_KEY=$SPROCKET_PEBBLE_DIR/api-key.pem
    _PEBBLE_CERT=$SPROCKET_PEBBLE_DIR/api-cert.pem
    _PEBBLE_GEN_CA=$SPROCKET_PEBBLE_DIR/api-ca.pem
    _PEBBLE_MARKER=$SPROCKET_PEBBLE_DIR/.sprocket-pebble
}

# Prints docker0's gateway address (engine.sh's engine_gateway_address: the bridge network's
# gateway, else docker0's IPv4 address), or 172.17.0.1 when neither is known (no engine).
_pebble_gateway() {
    local gw
    gw=$(engine_gateway_address 2>/dev/null) || gw=""
    printf '%s\n' "${gw:-172.17.0.1}"
}

# Prints the path of the CA pem that signed the API certificate in use.
pebble_api_ca() {
    _pebble_settings || return 1
    if [[ "$SPROCKET_PEBBLE_API_CERT" == generated ]]; then
        [[ -s "$_PEBBLE_GEN_CA" ]] || { _pebble_die "no $_PEBBLE_GEN_CA: run pebble_ensure first"; return 1; }
        printf '%s\n' "$_PEBBLE_GEN_CA"
    else
        [[ -s "$_PEBBLE_COMMITTED_CA" ]] || { _pebble_die "$_PEBBLE_COMMITTED_CA is missing from the repository"; return 1; }
        printf '%s\n' "$_PEBBLE_COMMITTED_CA"
    fi
}

pebble_directory_url_for_tasks() {
    _pebble_settings || return 1
    printf 'https://host.docker.internal:%s/dir\n' "$SPROCKET_PEBBLE_PORT"
}

# The address the host reaches Pebble on: where it listens (127.0.0.1 when that is everywhere).
_pebble_host_addr() {
    if [[ "$SPROCKET_PEBBLE_BIND" == 0.0.0.0 ]]; then printf '127.0.0.1\n'; else printf '%s\n' "$SPROCKET_PEBBLE_BIND"; fi
}

pebble_directory_url() {
    _pebble_settings || return 1
    printf 'https://%s:%s/dir\n' "$(_pebble_host_addr)" "$SPROCKET_PEBBLE_PORT"
}

# Serialises pebble_ensure/pebble_stop/pebble_destroy between processes. The processes started
# get every descriptor beyond stdio closed, so they never hold the lock.
_pebble_lock() {
    command -v flock >/dev/null 2>&1 || { _pebble_die "flock missing (util-linux)"; return 1; }
    exec {_PEBBLE_LOCK_FD}>>"$SPROCKET_PEBBLE_DIR/.lock" || { _pebble_die "cannot open $SPROCKET_PEBBLE_DIR/.lock"; return 1; }
    if ! flock -w 120 "$_PEBBLE_LOCK_FD"; then
        exec {_PEBBLE_LOCK_FD}>&-
        _pebble_die "another pebble_ensure/pebble_stop/pebble_destroy holds $SPROCKET_PEBBLE_DIR/.lock for more than 120s"
        return 1
    fi
}
_pebble_unlock() {
    if [[ -n "${_PEBBLE_LOCK_FD:-}" ]]; then
        exec {_PEBBLE_LOCK_FD}>&-
        _PEBBLE_LOCK_FD=
    fi
}

# Creates the state directory (0700, with a marker) or checks that an existing one is ours.
_pebble_ensure_dir() {
    local dir=$SPROCKET_PEBBLE_DIR
    if [[ -e "$dir" && ! -d "$dir" ]]; then
        _pebble_die "$dir exists and is not a directory"; return 1
    fi
    if [[ -d "$dir" && ! -e "$_PEBBLE_MARKER" && -n "$(ls -A "$dir")" ]]; then
        _pebble_die "$dir is not empty but was not made by scripts/lib/pebble.sh (no .sprocket-pebble); refusing to touch it (set SPROCKET_PEBBLE_DIR elsewhere)"
        return 1
    fi
    if ! { mkdir -p "$dir" && chmod 0700 "$dir" && touch "$_PEBBLE_MARKER"; }; then
        _pebble_die "cannot create $dir (root needed for the default /var/lib/sprocket-pebble?)"; return 1
    fi
}

_pebble_ensure_binaries() {
    if [[ ! -x "$_PEBBLE_BIN" || ! -x "$_PEBBLE_CHALLSRV_BIN" ]]; then
        [[ $EUID -eq 0 ]] || { _pebble_die "$_PEBBLE_BIN missing and installing Debian's pebble needs root"; return 1; }
        _pebble_log "no $_PEBBLE_BIN: installing Debian's pebble"
        _pebble_apt_install pebble || return 1
        [[ -x "$_PEBBLE_BIN" && -x "$_PEBBLE_CHALLSRV_BIN" ]] \
            || { _pebble_die "the pebble package installed no $_PEBBLE_BIN / $_PEBBLE_CHALLSRV_BIN"; return 1; }
    fi
    command -v curl >/dev/null 2>&1 || _pebble_apt_install curl || return 1
    command -v openssl >/dev/null 2>&1 || _pebble_apt_install openssl || return 1
}

# Copies $1 to $2 (mode $3) when the content differs; sets _pebble_changed=1 when it copied.
_pebble_install_file() {
    local src=$1 dst=$2 mode=$3
    if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
        chmod "$mode" "$dst" || { _pebble_die "chmod $mode $dst failed"; return 1; }
        return 0
    fi
    (umask 077 && cp "$src" "$dst.tmp" && chmod "$mode" "$dst.tmp" && mv -f "$dst.tmp" "$dst") \
        || { rm -f "$dst.tmp"; _pebble_die "cannot write $dst"; return 1; }
    _pebble_changed=1
}

# A CA (10 years, key discarded) and an API leaf (10 years) signed by it, SANs
# host.docker.internal, localhost, 127.0.0.1 and gateway $1; made again when the leaf does not
# name $1 or is not signed by api-ca.pem.
_pebble_generate_api_cert() {
    local gw=$1 tmp sans
    if [[ -s "$_PEBBLE_GEN_CA" && -s "$_PEBBLE_CERT" && -s "$_PEBBLE_KEY" ]] \
        && openssl verify -CAfile "$_PEBBLE_GEN_CA" "$_PEBBLE_CERT" >/dev/null 2>&1 \
        && openssl x509 -in "$_PEBBLE_CERT" -noout -ext subjectAltName 2>/dev/null | grep -qF "IP Address:$gw"; then
        chmod 0600 "$_PEBBLE_KEY"; return 0
    fi
    sans="DNS:host.docker.internal,DNS:localhost,IP:127.0.0.1"
    [[ "$gw" == 127.0.0.1 ]] || sans+=",IP:$gw"
    _pebble_log "making a CA and an API certificate ($sans) in $SPROCKET_PEBBLE_DIR"
    tmp=$(mktemp -d "$SPROCKET_PEBBLE_DIR/.gen.XXXXXX") || { _pebble_die "cannot make a temporary directory"; return 1; }
    if ! ( cd "$tmp" && umask 077 \
        && openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem \
        && openssl req -x509 -new -key ca-key.pem -sha256 -days 3660 \
            -subj "/CN=sprocket Pebble API test CA (generated)" \
            -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem \
        && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem \
        && openssl req -new -key key.pem -subj "/CN=host.docker.internal" -out leaf.csr \
        && printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=serverAuth" "subjectAltName=$sans" >leaf.ext \
        && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 \
            -days 3650 -extfile leaf.ext -out cert.pem \
        && rm -f ca-key.pem ca.srl ) >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"
        _pebble_die "openssl could not make the API certificate"; return 1
    fi
    rm -f "$tmp.log"
    if ! { chmod 0644 "$tmp/cert.pem" "$tmp/ca.pem" && mv -f "$tmp/key.pem" "$_PEBBLE_KEY" \
            && mv -f "$tmp/cert.pem" "$_PEBBLE_CERT" && mv -f "$tmp/ca.pem" "$_PEBBLE_GEN_CA"; }; then
        rm -rf "$tmp"; _pebble_die "cannot install the generated certificate"; return 1
    fi
    rm -rf "$tmp"
    _pebble_changed=1
}

# The API's key and certificate in the state directory, and pebble-config.json; sets
# _pebble_changed=1 when any of them changed (a running pebble then needs a restart).
_pebble_ensure_config() {
    local gw=$1 conf validity=""
    if [[ "$SPROCKET_PEBBLE_API_CERT" == committed ]]; then
        local f
        for f in "$_PEBBLE_COMMITTED_CA" "$_PEBBLE_COMMITTED_KEY" "$_PEBBLE_COMMITTED_CERT"; do
            [[ -s "$f" ]] || { _pebble_die "$f is missing from the repository"; return 1; }
        done
        _pebble_install_file "$_PEBBLE_COMMITTED_KEY" "$_PEBBLE_KEY" 0600 || return 1
        _pebble_install_file "$_PEBBLE_COMMITTED_CERT" "$_PEBBLE_CERT" 0644 || return 1
        rm -f "$_PEBBLE_GEN_CA"
        if [[ "$gw" != 172.17.0.1 ]]; then
            _pebble_log "note: docker0's address is $gw, not 172.17.0.1 (the committed API certificate's IP): tasks must use https://host.docker.internal:$SPROCKET_PEBBLE_PORT (or set SPROCKET_PEBBLE_API_CERT=generated)"
        fi
    else
        _pebble_generate_api_cert "$gw" || return 1
    fi
    if [[ -n "$SPROCKET_PEBBLE_CERT_SECONDS" ]]; then
        validity=",
    \"certificateValidityPeriod\": $SPROCKET_PEBBLE_CERT_SECONDS"
    fi
    conf="{
  \"pebble\": {
    \"listenAddress\": \"$SPROCKET_PEBBLE_BIND:$SPROCKET_PEBBLE_PORT\",
    \"managementListenAddress\": \"$SPROCKET_PEBBLE_BIND:$SPROCKET_PEBBLE_MGMT_PORT\",
    \"certificate\": \"$_PEBBLE_CERT\",
    \"privateKey\": \"$_PEBBLE_KEY\",
    \"httpPort\": $SPROCKET_PEBBLE_HTTP_PORT,
    \"tlsPort\": $SPROCKET_PEBBLE_TLS_PORT,
    \"ocspResponderURL\": \"\",
    \"externalAccountBindingRequired\": false$validity
  }
}"
    if [[ -f "$_PEBBLE_CONF" ]] && [[ "$(cat "$_PEBBLE_CONF")" == "$conf" ]]; then
        return 0
    fi
    (umask 077 && printf '%s\n' "$conf" >"$_PEBBLE_CONF.tmp" && mv -f "$_PEBBLE_CONF.tmp" "$_PEBBLE_CONF") \
        || { rm -f "$_PEBBLE_CONF.tmp"; _pebble_die "cannot write $_PEBBLE_CONF"; return 1; }
    _pebble_log "wrote $_PEBBLE_CONF"
    _pebble_changed=1
}

# The command line of process $1 (pebble | challtestsrv) in array _PEBBLE_ARGV.
_pebble_argv() {
    if [[ "$1" == pebble ]]; then
        _PEBBLE_ARGV=(env PEBBLE_VA_NOSLEEP=1 "$_PEBBLE_BIN" -config "$_PEBBLE_CONF"
            -dnsserver "127.0.0.1:$SPROCKET_PEBBLE_DNS_PORT")
    else
        _PEBBLE_ARGV=("$_PEBBLE_CHALLSRV_BIN" -defaultIPv4 "$SPROCKET_PEBBLE_CHALLENGE_IPV4" -defaultIPv6 ""
            -dns01 "127.0.0.1:$SPROCKET_PEBBLE_DNS_PORT" -management "127.0.0.1:$SPROCKET_PEBBLE_DNS_MGMT_PORT"
            -http01 "" -https01 "" -tlsalpn01 "")
    fi
}

# True when $2 is a live process of kind $1 (pebble | challtestsrv) started from our state
# directory (its working directory).
_pebble_is_ours() {
    local kind=$1 pid=$2 exe
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    exe=$_PEBBLE_BIN
    [[ "$kind" == challtestsrv ]] && exe=$_PEBBLE_CHALLSRV_BIN
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$exe" \
        && "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$SPROCKET_PEBBLE_DIR" ]]
}

# Prints the pid of our running process of kind $1 (pid file; else a process of that binary
# whose working directory is ours: a lost pid file); prints nothing when none runs.
_pebble_pid() {
    local kind=$1 pidfile=$SPROCKET_PEBBLE_DIR/$1.pid pid exe
    if [[ -s "$pidfile" ]]; then
        pid=$(cat "$pidfile")
        if _pebble_is_ours "$kind" "$pid"; then
            printf '%s\n' "$pid"; return 0
        fi
        rm -f "$pidfile"
    fi
    exe=$_PEBBLE_BIN
    [[ "$kind" == challtestsrv ]] && exe=$_PEBBLE_CHALLSRV_BIN
    for pid in $(pgrep -x -f "$exe.*" 2>/dev/null || true); do
        if _pebble_is_ours "$kind" "$pid"; then
            printf '%s' "$pid" >"$pidfile"
            _pebble_log "found $kind (pid $pid) without a pid file; adopted it"
            printf '%s\n' "$pid"; return 0
        fi
    done
}

# True when Pebble's directory answers at https://$1:PORT/dir (checked against the API CA).
_pebble_answers() {
    local ca out
    ca=$(pebble_api_ca 2>/dev/null) || return 1
    out=$(curl -sS --max-time 2 --cacert "$ca" "https://$1:$SPROCKET_PEBBLE_PORT/dir" 2>/dev/null) || return 1
    [[ "$out" == *'"newNonce"'* ]]
}

# True when challtestsrv's management port answers HTTP (any status) and its DNS port is bound.
_pebble_challsrv_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$SPROCKET_PEBBLE_DNS_MGMT_PORT/" 2>/dev/null) || true
    [[ "$code" =~ ^[1-5][0-9][0-9]$ ]] || return 1
    ! command -v ss >/dev/null 2>&1 || [[ -n "$(ss -Hlun "sport = :$SPROCKET_PEBBLE_DNS_PORT" 2>/dev/null)" ]]
}

_pebble_log_tail() {
    local log=$SPROCKET_PEBBLE_DIR/$1.log
    if [[ -s "$log" ]]; then
        _pebble_log "last 30 lines of $log:"
        tail -n 30 "$log" >&2 || true
    else
        _pebble_log "no log at $log"
    fi
}

_pebble_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
_pebble_elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" -v w="$2" 'BEGIN { exit !(b - a >= w) }'; }

# Starts process $1 (pebble | challtestsrv) detached and waits (at most SPROCKET_PEBBLE_WAIT s)
# until it answers (readiness check $2, given address $3). Sets _PEBBLE_STARTED_PID/_IN.
_pebble_start() {
    local kind=$1 check=$2 addr=$3 log=$SPROCKET_PEBBLE_DIR/$1.log pidfile=$SPROCKET_PEBBLE_DIR/$1.pid
    local p busy="" pid t0 tcp=() udp=()
    if [[ "$kind" == pebble ]]; then
        tcp=("$SPROCKET_PEBBLE_PORT" "$SPROCKET_PEBBLE_MGMT_PORT")
    else
        tcp=("$SPROCKET_PEBBLE_DNS_MGMT_PORT" "$SPROCKET_PEBBLE_DNS_PORT"); udp=("$SPROCKET_PEBBLE_DNS_PORT")
    fi
    if command -v ss >/dev/null 2>&1; then
        for p in "${tcp[@]}"; do
            [[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]] || busy+=" tcp/$p($(ss -Hltnp "sport = :$p" | head -n 1 | grep -o 'users:.*'))"
        done
        for p in "${udp[@]}"; do
            [[ -z "$(ss -Hlun "sport = :$p" 2>/dev/null)" ]] || busy+=" udp/$p($(ss -Hlunp "sport = :$p" | head -n 1 | grep -o 'users:.*'))"
        done
        if [[ -n "$busy" ]]; then
            _pebble_die "ports $kind needs are in use by something else:$busy — stop that, or move the SPROCKET_PEBBLE_*PORT variables"
            return 1
        fi
    fi
    _pebble_argv "$kind"
    [[ -f "$log" ]] && mv -f "$log" "$log.1"
    printf '%s\n' "${_PEBBLE_ARGV[*]}" >"$SPROCKET_PEBBLE_DIR/$kind.args" \
        || { _pebble_die "cannot write $SPROCKET_PEBBLE_DIR/$kind.args"; return 1; }
    t0=$EPOCHREALTIME
    # Detached into its own session so it outlives this shell (setsid, nohup and env exec in
    # place: $! is the server's pid). Descriptors beyond stdio are closed first (locks included).
    pid=$( (for fd in "/proc/$BASHPID/fd/"*; do
                fd=${fd##*/}
                if (( fd > 2 )); then eval "exec $fd>&-"; fi
            done 2>/dev/null
            cd "$SPROCKET_PEBBLE_DIR" || exit 1
            setsid nohup "${_PEBBLE_ARGV[@]}" >>"$log" 2>&1 </dev/null &
            echo $!) ) || pid=""
    [[ "$pid" =~ ^[0-9]+$ ]] || { _pebble_die "could not start $kind"; return 1; }
    printf '%s' "$pid" >"$pidfile"
    while ! "$check" "$addr"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            _pebble_log_tail "$kind"
            _pebble_die "$kind (pid $pid) exited before it answered; fix what the log says and re-run pebble_ensure"
            return 1
        fi
        if _pebble_elapsed "$t0" "$SPROCKET_PEBBLE_WAIT"; then
            _pebble_log_tail "$kind"
            _pebble_die "$kind (pid $pid) runs but does not answer after ${SPROCKET_PEBBLE_WAIT}s; stop it (pebble_stop) and see the log"
            return 1
        fi
        sleep 0.1
    done
    _PEBBLE_STARTED_PID=$pid
    _PEBBLE_STARTED_IN=$(_pebble_since "$t0")
}

# True while process $1 exists and is not a zombie.
_pebble_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# Stops process $2 of kind $1: SIGTERM, SIGKILL after SPROCKET_PEBBLE_STOP_WAIT s.
_pebble_stop_pid() {
    local kind=$1 pid=$2 t0=$EPOCHREALTIME how=SIGTERM wait=$SPROCKET_PEBBLE_STOP_WAIT
    kill -TERM "$pid" 2>/dev/null || true
    while _pebble_alive "$pid"; do
        if _pebble_elapsed "$t0" "$wait"; then
            if [[ "$how" == SIGTERM ]]; then
                _pebble_log "$kind (pid $pid) still runs ${SPROCKET_PEBBLE_STOP_WAIT}s after SIGTERM: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                how=SIGKILL; t0=$EPOCHREALTIME; wait=5
            else
                _pebble_die "$kind (pid $pid) still runs after SIGKILL"; return 1
            fi
        fi
        sleep 0.1
    done
    rm -f "$SPROCKET_PEBBLE_DIR/$kind.pid"
    _pebble_log "stopped $kind (pid $pid, $(_pebble_since "$t0")s after $how)"
}

# Makes sure process $1 runs with the wanted command line (restarting it when it differs, or
# when $2 is 1: its configuration changed) and answers. Sets _PEBBLE_HOW.
_pebble_ensure_process() {
    local kind=$1 changed=$2 check=$3 addr=$4 pid want have waited=0
    _pebble_argv "$kind"
    want="${_PEBBLE_ARGV[*]}"
    pid=$(_pebble_pid "$kind")
    if [[ -n "$pid" ]]; then
        have=$(cat "$SPROCKET_PEBBLE_DIR/$kind.args" 2>/dev/null) || have=""
        if [[ "$have" == "$want" && "$changed" != 1 ]]; then
            while ! "$check" "$addr"; do
                if (( waited >= SPROCKET_PEBBLE_WAIT * 10 )); then
                    _pebble_log_tail "$kind"
                    _pebble_die "$kind (pid $pid) runs but does not answer after ${SPROCKET_PEBBLE_WAIT}s: restart it (pebble_stop; pebble_ensure)"
                    return 1
                fi
                sleep 0.1; waited=$((waited + 1))
            done
            _PEBBLE_HOW="$kind pid $pid already running"
            return 0
        fi
        _pebble_log "restarting $kind (pid $pid): its command line or configuration changed"
        _pebble_stop_pid "$kind" "$pid" || return 1
    fi
    _pebble_start "$kind" "$check" "$addr" || return 1
    _PEBBLE_HOW="$kind pid $_PEBBLE_STARTED_PID started, answered after ${_PEBBLE_STARTED_IN}s"
}

_pebble_ensure_locked() {
    local gw=$1 how_c how_p rss="" pid
    _pebble_ensure_config "$gw" || return 1
    _pebble_ensure_process challtestsrv 0 _pebble_challsrv_answers "" || return 1
    how_c=$_PEBBLE_HOW
    _pebble_ensure_process pebble "$_pebble_changed" _pebble_answers "$(_pebble_host_addr)" || return 1
    how_p=$_PEBBLE_HOW
    # Tasks reach it on docker0's gateway: check that address too when Pebble listens there.
    if [[ "$SPROCKET_PEBBLE_BIND" == 0.0.0.0 || "$SPROCKET_PEBBLE_BIND" == "$gw" ]] \
        && ip -4 -o addr show 2>/dev/null | grep -qF " $gw/"; then
        if [[ "$SPROCKET_PEBBLE_API_CERT" == generated || "$gw" == 172.17.0.1 ]]; then
            _pebble_answers "$gw" || { _pebble_die "Pebble answers on 127.0.0.1 but not on https://$gw:$SPROCKET_PEBBLE_PORT/dir (firewall?)"; return 1; }
        fi
    fi
    pid=$(_pebble_pid pebble)
    [[ -n "$pid" ]] && rss=$(awk '/^VmRSS:/ { printf ", %d MB RSS", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null)
    _pebble_log "Pebble 2.4 ACME on $(pebble_directory_url) (tasks: $(pebble_directory_url_for_tasks)), listening on $SPROCKET_PEBBLE_BIND — HTTP-01 to $SPROCKET_PEBBLE_CHALLENGE_IPV4:$SPROCKET_PEBBLE_HTTP_PORT, certificates valid ${SPROCKET_PEBBLE_CERT_SECONDS:-157766400}s, API CA $(pebble_api_ca) — $how_p$rss; $how_c (DNS 127.0.0.1:$SPROCKET_PEBBLE_DNS_PORT); logs in $SPROCKET_PEBBLE_DIR"
}

pebble_ensure() {
    local gw rc
    _pebble_changed=0
    _pebble_settings || return 1
    _pebble_ensure_binaries || return 1
    gw=$(_pebble_gateway)
    _pebble_ensure_dir || return 1
    _pebble_lock || return 1
    _pebble_ensure_locked "$gw"; rc=$?
    _pebble_unlock
    return "$rc"
}

pebble_stop() {
    local kind pid rc=0 any=0
    _pebble_settings || return 1
    if [[ ! -e "$_PEBBLE_MARKER" ]]; then
        _pebble_log "no state in $SPROCKET_PEBBLE_DIR: nothing to stop"
        return 0
    fi
    _pebble_lock || return 1
    for kind in pebble challtestsrv; do
        pid=$(_pebble_pid "$kind")
        [[ -n "$pid" ]] || continue
        any=1
        _pebble_stop_pid "$kind" "$pid" || rc=1
    done
    (( any )) || _pebble_log "not running ($SPROCKET_PEBBLE_DIR)"
    _pebble_unlock
    return "$rc"
}

# Stops both processes, then removes the state directory (config, API key and certificate
# copies or generated ones, logs).
pebble_destroy() {
    _pebble_settings || return 1
    if [[ ! -e "$SPROCKET_PEBBLE_DIR" ]]; then
        _pebble_log "no $SPROCKET_PEBBLE_DIR: nothing to remove"
        return 0
    fi
    if [[ ! -e "$_PEBBLE_MARKER" ]]; then
        if [[ -d "$SPROCKET_PEBBLE_DIR" && -z "$(ls -A "$SPROCKET_PEBBLE_DIR")" ]]; then
            rmdir "$SPROCKET_PEBBLE_DIR"; return 0
        fi
        _pebble_die "$SPROCKET_PEBBLE_DIR was not made by scripts/lib/pebble.sh (no .sprocket-pebble); refusing to remove it"
        return 1
    fi
    pebble_stop || return 1
    rm -rf -- "$SPROCKET_PEBBLE_DIR" || { _pebble_die "rm -rf $SPROCKET_PEBBLE_DIR failed"; return 1; }
    _pebble_log "removed $SPROCKET_PEBBLE_DIR"
}

# pebble_root_pem FILE: writes the root certificate that issues Pebble's certificates (new on
# every Pebble start: fetch it again after a restart) into FILE (0644), from the management API.
pebble_root_pem() {
    local file=${1:-} ca tmp
    [[ -n "$file" && $# -eq 1 ]] || { _pebble_die "usage: pebble_root_pem FILE"; return 1; }
    _pebble_settings || return 1
    ca=$(pebble_api_ca) || return 1
    tmp=$(mktemp "$file.XXXXXX") || { _pebble_die "cannot write next to $file"; return 1; }
    if ! curl -sSf --max-time 10 --cacert "$ca" -o "$tmp" "https://$(_pebble_host_addr):$SPROCKET_PEBBLE_MGMT_PORT/roots/0"; then
        rm -f "$tmp"
        _pebble_die "cannot fetch https://$(_pebble_host_addr):$SPROCKET_PEBBLE_MGMT_PORT/roots/0 (Pebble running? pebble_ensure)"; return 1
    fi
    if ! openssl x509 -in "$tmp" -noout 2>/dev/null; then
        rm -f "$tmp"; _pebble_die "/roots/0 did not give a PEM certificate"; return 1
    fi
    if ! { chmod 0644 "$tmp" && mv -f "$tmp" "$file"; }; then
        rm -f "$tmp"; _pebble_die "cannot write $file"; return 1
    fi
}
