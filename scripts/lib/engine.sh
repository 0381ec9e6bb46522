# shellcheck shell=bash
# Engine helpers for sprocketctl's local runs and tests. Source this file:
#
#   source scripts/lib/engine.sh
#   engine_ensure      # a Docker Engine answers on the default socket (starts one if needed)
#   swarm_ensure       # that engine is a swarm manager
#   engine_stop        # stops the dockerd that engine_ensure started (pidfile), if any
#
# Facts this relies on (see shared/docs/components.md): Debian 12, root, no registry,
# `apt-get install docker.io` gives dockerd 20.10 (API 1.41); the 28.x client in
# /usr/local/bin negotiates down to it. No IPVS: services must use dnsrr + host ports.
#
# Every function fails loudly (message on stderr, non-zero return) and never skips silently.

SPROCKET_DOCKERD_LOG=${SPROCKET_DOCKERD_LOG:-/var/log/sprocket-dockerd.log}
SPROCKET_DOCKERD_PIDFILE=${SPROCKET_DOCKERD_PIDFILE:-/var/run/sprocket-dockerd.pid}
SPROCKET_DOCKERD_WAIT=${SPROCKET_DOCKERD_WAIT:-60}

_engine_log() { printf '[engine] %s\n' "$*" >&2; }
_engine_die() { printf '[engine] ERROR: %s\n' "$*" >&2; return 1; }

# True when a Docker Engine answers on the current DOCKER_HOST (default socket).
engine_up() { docker info >/dev/null 2>&1; }

# apt-get install, running `apt-get update` first when the package is unknown. Tests run in
# parallel and may install at once (two ACME tests each wanting Pebble on a fresh machine): apt
# waits for the other's dpkg lock instead of failing.
_engine_apt_install() {
    local pkg
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "$@"; do
        if ! apt-cache show "$pkg" >/dev/null 2>&1 || [[ -z "$(apt-cache policy "$pkg" | awk '/Candidate:/ && $2 != "(none)"')" ]]; then
            _engine_log "apt-get update (package $pkg unknown to apt)"
            apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null || { _engine_die "apt-get update failed"; return 1; }
            break
        fi
    done
    _engine_log "apt-get install -y $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >/dev/null \
        || { _engine_die "apt-get install $* failed"; return 1; }
}

# Prints docker0's gateway address: the bridge network's IPAM gateway, else docker0's own IPv4
# address. That is the address `host-gateway` resolves to inside swarm tasks: what runs on the
# host for them (the local PostgreSQL and S3) listens there.
engine_gateway_address() {
    local gw=""
    if command -v docker >/dev/null 2>&1; then
        gw=$(docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null) || gw=""
    fi
    if [[ ! "$gw" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        gw=$(ip -4 -o addr show dev docker0 2>/dev/null | awk '!done++ { sub(/\/.*/, "", $4); print $4 }') || gw=""
    fi
    if [[ ! "$gw" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        _engine_die "cannot find docker0's gateway address (neither \`docker network inspect bridge\` nor the docker0 interface gave one): start the engine first (engine_ensure)"
        return 1
    fi
    printf '%s\n' "$gw"
}

engine_ensure() {
    if ! command -v docker >/dev/null 2>&1; then
        _engine_die "no docker client on PATH"; return 1
    fi
    if engine_up; then
        _engine_log "engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return 0
    fi
    if [[ -n "${DOCKER_HOST:-}" && "$DOCKER_HOST" != unix:///var/run/docker.sock ]]; then
        _engine_die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine for a foreign DOCKER_HOST"
        return 1
    fi
    if [[ $EUID -ne 0 ]]; then
        _engine_die "no engine answers and starting dockerd needs root"; return 1
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        _engine_log "dockerd missing: installing Debian's docker.io"
        _engine_apt_install docker.io || return 1
        command -v dockerd >/dev/null 2>&1 || { _engine_die "docker.io installed but no dockerd on PATH"; return 1; }
    fi
    # A dockerd of ours that is still starting (or hung): don't start a second one.
    local pid=""
    if [[ -s "$SPROCKET_DOCKERD_PIDFILE" ]]; then
        pid=$(cat "$SPROCKET_DOCKERD_PIDFILE")
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$SPROCKET_DOCKERD_PIDFILE"; pid=""
        else
            _engine_log "dockerd (pid $pid) already started; waiting for it"
        fi
    fi
    if [[ -z "$pid" ]]; then
        if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null 2>&1; then
            rm -f /var/run/docker.sock   # stale socket from an engine that died
        fi
        if pgrep -x dockerd >/dev/null 2>&1; then
            _engine_die "a dockerd not started by us is running but does not answer on /var/run/docker.sock (pids: $(pgrep -x dockerd | tr '\n' ' '))"
            return 1
        fi
        _engine_log "starting dockerd (log $SPROCKET_DOCKERD_LOG)"
        mkdir -p "$(dirname "$SPROCKET_DOCKERD_LOG")"
        # Detached into its own session so it outlives this script and its terminal.
        # Started from a subshell (no job control there), so setsid execs in place
        # instead of forking and $! is dockerd's own pid, even when the caller is an
        # interactive shell. Descriptors beyond stdio are closed first: dockerd outlives its
        # caller and would hold whatever the caller had open (seen: `flock LOCK scripts/test`
        # left the lock held by dockerd, so every later `flock LOCK cargo …` waited forever).
        pid=$( (for fd in /proc/$BASHPID/fd/*; do
                    fd=${fd##*/}
                    if (( fd > 2 )); then eval "exec $fd>&-"; fi
                done 2>/dev/null
                setsid nohup dockerd --host unix:///var/run/docker.sock \
                    --pidfile "$SPROCKET_DOCKERD_PIDFILE" \
                    >>"$SPROCKET_DOCKERD_LOG" 2>&1 </dev/null &
                echo $!) )
    fi
    local waited=0
    while ! engine_up; do
        if ! kill -0 "$pid" 2>/dev/null; then
            _engine_log "dockerd exited; last 30 lines of $SPROCKET_DOCKERD_LOG:"
            tail -n 30 "$SPROCKET_DOCKERD_LOG" >&2 || true
            _engine_die "dockerd failed to start"; return 1
        fi
        if (( waited >= SPROCKET_DOCKERD_WAIT )); then
            _engine_log "dockerd did not answer within ${SPROCKET_DOCKERD_WAIT}s; last 30 lines of $SPROCKET_DOCKERD_LOG:"
            tail -n 30 "$SPROCKET_DOCKERD_LOG" >&2 || true
            _engine_die "dockerd (pid $pid) not answering"; return 1
        fi
        sleep 1; waited=$((waited + 1))
    done
    _engine_log "engine up after ${waited}s ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), pid $pid)"
}

swarm_ensure() {
    engine_up || { _engine_die "no engine answers (call engine_ensure first)"; return 1; }
    local state ctl
    state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) || state=""
    ctl=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) || ctl=""
    if [[ "$state" == active && "$ctl" == true ]]; then
        _engine_log "swarm: already a manager"
        return 0
    fi
    if [[ "$state" == active ]]; then
        _engine_die "engine is in a swarm but is not a manager; refusing to change it"; return 1
    fi
    if [[ "$state" == pending || "$state" == error ]]; then
        _engine_die "swarm state is '$state'; fix it by hand (docker swarm leave --force)"; return 1
    fi
    _engine_log "swarm init --advertise-addr 127.0.0.1"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null \
        || { _engine_die "docker swarm init failed"; return 1; }
    _engine_log "swarm: manager ready"
}

# Stops the dockerd that engine_ensure started (found through its pidfile). An engine
# not started by us is left alone (message, return 0). Waits up to 30 s for it to exit.
engine_stop() {
    if [[ ! -s "$SPROCKET_DOCKERD_PIDFILE" ]]; then
        _engine_log "no pidfile $SPROCKET_DOCKERD_PIDFILE: no dockerd of ours to stop"
        return 0
    fi
    local pid waited=0
    pid=$(cat "$SPROCKET_DOCKERD_PIDFILE")
    if ! kill -0 "$pid" 2>/dev/null; then
        _engine_log "dockerd pid $pid not running; removing stale pidfile"
        rm -f "$SPROCKET_DOCKERD_PIDFILE"
        return 0
    fi
    _engine_log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if (( waited >= 30 )); then
            _engine_die "dockerd (pid $pid) still running after 30s"; return 1
        fi
        sleep 1; waited=$((waited + 1))
    done
    rm -f "$SPROCKET_DOCKERD_PIDFILE"
    _engine_log "dockerd stopped after ${waited}s"
}
