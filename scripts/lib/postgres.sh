# shellcheck shell=bash
# A real PostgreSQL 15 outside the swarm, standing in for a managed PostgreSQL
# (DigitalOcean) that swarm tasks reach over TCP. Source this file:
#
#   source scripts/lib/postgres.sh
#   pg_ensure            # initdb once, configure, start (or reload), ensure the admin role
#   pg_stop              # pg_ctl stop -m fast, if running
#   pg_destroy           # pg_stop, then remove the data directory
#   pg_gateway_address   # prints docker0's gateway address (what tasks reach the host at)
#
# Variables (read when a function runs, defaults in brackets):
#   SPROCKET_PG_PORT [5433]                    TCP port (and unix socket name)
#   SPROCKET_PG_DIR [/var/lib/sprocket-postgres]  data directory (owned by postgres, 0700)
#   SPROCKET_PG_ADMIN [doadmin]                administrator role: LOGIN CREATEROLE CREATEDB,
#                                              not a superuser (named as on DigitalOcean)
#   SPROCKET_PG_ADMIN_PASSWORD [the file below] its password. Never printed and never put in a
#                                              command's arguments: it reaches psql through the
#                                              environment (\getenv). Unset: read from
#                                              $SPROCKET_PG_DIR/sprocket-admin-password, made
#                                              (random, 0600) on first use — `pg_admin_password`
#                                              prints it for the callers that seed it into a
#                                              secrets file.
#   SPROCKET_PG_ADMIN_DB [defaultdb]           the database the administrator connects to; made
#                                              (owned by it) when it is another (DigitalOcean's
#                                              is `defaultdb`).
#   SPROCKET_PG_BIN [/usr/lib/postgresql/15/bin]
#   SPROCKET_PG_SOCKET_DIR [/var/run/postgresql]
#   SPROCKET_PG_WAIT [30]                      seconds to wait for the server to answer
#
# Facts this relies on: Debian 12, root, Debian's postgresql-15. PostgreSQL refuses to run as
# root, so the server and the superuser's psql run as the OS user `postgres` (runuser). A swarm
# service given `--host host.docker.internal:host-gateway` maps that name to docker0's address
# (172.17.0.1 here), so the server listens on 127.0.0.1 and that address; tasks' connections
# arrive from docker_gwbridge / overlay addresses (172.16.0.0/12, 10.0.0.0/8).
# Logs go to server.log in the data directory; statements are never logged (they may carry
# passwords).
#
# Every function fails loudly (message on stderr, non-zero return) and never skips silently.

_pg_log() { printf '[postgres] %s\n' "$*" >&2; }
_pg_die() { printf '[postgres] ERROR: %s\n' "$*" >&2; return 1; }

# Resolves the variables above (defaults) and validates them.
_pg_settings() {
    SPROCKET_PG_PORT=${SPROCKET_PG_PORT:-5433}
    SPROCKET_PG_DIR=${SPROCKET_PG_DIR:-/var/lib/sprocket-postgres}
    SPROCKET_PG_ADMIN=${SPROCKET_PG_ADMIN:-doadmin}
    SPROCKET_PG_ADMIN_DB=${SPROCKET_PG_ADMIN_DB:-defaultdb}
    SPROCKET_PG_BIN=${SPROCKET_PG_BIN:-/usr/lib/postgresql/15/bin}
    SPROCKET_PG_SOCKET_DIR=${SPROCKET_PG_SOCKET_DIR:-/var/run/postgresql}
    SPROCKET_PG_WAIT=${SPROCKET_PG_WAIT:-30}
    if [[ ! "$SPROCKET_PG_PORT" =~ ^[0-9]+$ ]] || (( SPROCKET_PG_PORT < 1 || SPROCKET_PG_PORT > 65535 )); then
        _pg_die "SPROCKET_PG_PORT='$SPROCKET_PG_PORT' is not a port number"; return 1
    fi
    if [[ "$SPROCKET_PG_DIR" != /?* || "$SPROCKET_PG_DIR" == *[[:space:]\'\"]* ]]; then
        _pg_die "SPROCKET_PG_DIR='$SPROCKET_PG_DIR' must be an absolute path without spaces or quotes"; return 1
    fi
    SPROCKET_PG_DIR=${SPROCKET_PG_DIR%/}
    if [[ ! "$SPROCKET_PG_ADMIN" =~ ^[a-z_][a-z0-9_]{0,62}$ || "$SPROCKET_PG_ADMIN" == postgres || "$SPROCKET_PG_ADMIN" == pg_* ]]; then
        _pg_die "SPROCKET_PG_ADMIN='$SPROCKET_PG_ADMIN' must be a lower-case SQL identifier, not postgres or pg_*"; return 1
    fi
    if [[ ! "$SPROCKET_PG_ADMIN_DB" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
        _pg_die "SPROCKET_PG_ADMIN_DB='$SPROCKET_PG_ADMIN_DB' must be a lower-case SQL identifier"; return 1
    fi
    if [[ "$SPROCKET_PG_SOCKET_DIR" != /?* || "$SPROCKET_PG_SOCKET_DIR" == *[[:space:]\'\"]* ]]; then
        _pg_die "SPROCKET_PG_SOCKET_DIR='$SPROCKET_PG_SOCKET_DIR' must be an absolute path without spaces or quotes"; return 1
    fi
    if [[ ! "$SPROCKET_PG_WAIT" =~ ^[0-9]+$ ]]; then
        _pg_die "SPROCKET_PG_WAIT='$SPROCKET_PG_WAIT' is not a number of seconds"; return 1
    fi
}

# apt-get install: engine.sh's (apt-get update first when a package is unknown).
# shellcheck source=engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"
_pg_apt_install() { _engine_apt_install "$@"; }

# Runs a command as the OS user postgres, from / (root's cwd may be unreadable to it).
# The environment is passed through (runuser without --login).
_pg_as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# psql as the superuser postgres over the unix socket (peer authentication).
_pg_psql_super() {
    _pg_as_postgres "$SPROCKET_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$SPROCKET_PG_SOCKET_DIR" -p "$SPROCKET_PG_PORT" -d postgres "$@"
}

# True when a postmaster runs on $SPROCKET_PG_DIR (pg_ctl status).
_pg_running() {
    [[ -f "$SPROCKET_PG_DIR/PG_VERSION" ]] || return 1
    _pg_as_postgres "$SPROCKET_PG_BIN/pg_ctl" status -D "$SPROCKET_PG_DIR" >/dev/null 2>&1
}

# Line N of postmaster.pid (4: port, 5: socket directory, 6: first listen address).
_pg_pidfile_line() { sed -n "${1}p" "$SPROCKET_PG_DIR/postmaster.pid" 2>/dev/null; }

# Writes $2 into file $1 (owner postgres, mode 0600) when its content differs;
# sets _pg_changed=1 when it wrote.
_pg_write_if_changed() {
    local file=$1 content=$2
    if [[ -f "$file" ]] && [[ "$(cat "$file")" == "$content" ]]; then
        return 0
    fi
    printf '%s\n' "$content" >"$file.tmp" \
        && chown postgres:postgres "$file.tmp" && chmod 0600 "$file.tmp" \
        && mv -f "$file.tmp" "$file" \
        || { rm -f "$file.tmp"; _pg_die "cannot write $file"; return 1; }
    _pg_log "wrote $file"
    _pg_changed=1
}

_pg_log_tail() {
    local log="$SPROCKET_PG_DIR/server.log"
    if [[ -s "$log" ]]; then
        _pg_log "last 30 lines of $log:"
        tail -n 30 "$log" >&2 || true
    else
        _pg_log "no log at $log"
    fi
}

# Prints docker0's gateway address: the bridge network's IPAM gateway, else docker0's own
# IPv4 address. That is the address `host-gateway` resolves to inside swarm tasks.
pg_gateway_address() {
    engine_gateway_address
}

# Installs postgresql-15 if needed, makes sure the OS user postgres exists.
_pg_ensure_binaries() {
    local b
    if [[ ! -x "$SPROCKET_PG_BIN/postgres" || ! -x "$SPROCKET_PG_BIN/psql" ]]; then
        _pg_log "no PostgreSQL 15 in $SPROCKET_PG_BIN: installing Debian's postgresql-15"
        _pg_apt_install postgresql-15 || return 1
    fi
    for b in postgres initdb pg_ctl psql pg_isready; do
        [[ -x "$SPROCKET_PG_BIN/$b" ]] || { _pg_die "$SPROCKET_PG_BIN/$b missing (postgresql-15 installed?)"; return 1; }
    done
    command -v openssl >/dev/null 2>&1 || _pg_apt_install openssl || return 1
    if ! id -u postgres >/dev/null 2>&1; then
        _pg_log "creating the OS user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres \
            || { _pg_die "useradd postgres failed"; return 1; }
    fi
}

# Creates and initdb's the data directory once; checks an existing one.
_pg_ensure_datadir() {
    local dir=$SPROCKET_PG_DIR owner ver locale=C
    if [[ -f "$dir/PG_VERSION" ]]; then
        ver=$(cat "$dir/PG_VERSION")
        [[ "$ver" == 15 ]] || { _pg_die "$dir holds a PostgreSQL $ver cluster, not 15"; return 1; }
        owner=$(stat -c %U "$dir")
        [[ "$owner" == postgres ]] || { _pg_die "$dir is owned by $owner, not postgres"; return 1; }
        chmod 0700 "$dir" || { _pg_die "chmod 0700 $dir failed"; return 1; }
        return 0
    fi
    if [[ -e "$dir" && ! -d "$dir" ]]; then
        _pg_die "$dir exists and is not a directory"; return 1
    fi
    if [[ -d "$dir" && -n "$(ls -A "$dir")" ]]; then
        _pg_die "$dir is not empty but holds no PostgreSQL cluster (no PG_VERSION); refusing to touch it"; return 1
    fi
    mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 0700 "$dir" \
        || { _pg_die "cannot create $dir owned by postgres"; return 1; }
    _pg_as_postgres test -w "$dir/." \
        || { _pg_die "the OS user postgres cannot write $dir (a parent directory not traversable?)"; return 1; }
    if locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null; then locale=C.UTF-8; fi
    _pg_log "initdb $dir (UTF8, locale $locale)"
    _pg_as_postgres "$SPROCKET_PG_BIN/initdb" -D "$dir" --auth-local=peer --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale="$locale" --username=postgres >"$dir.initdb.log" 2>&1 || {
        tail -n 30 "$dir.initdb.log" >&2
        rm -f "$dir.initdb.log"
        _pg_die "initdb $dir failed"; return 1
    }
    rm -f "$dir.initdb.log"
}

# Self-signed certificate, made once (sslmode=require does not verify it).
_pg_ensure_cert() {
    local dir=$SPROCKET_PG_DIR gw=$1
    if [[ -s "$dir/server.crt" && -s "$dir/server.key" ]]; then
        chown postgres:postgres "$dir/server.crt" "$dir/server.key" && chmod 0600 "$dir/server.key" \
            || { _pg_die "cannot fix owner/mode of $dir/server.key"; return 1; }
        return 0
    fi
    _pg_log "making a self-signed certificate (CN=$gw)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$gw" \
        -addext "subjectAltName=IP:$gw,IP:127.0.0.1,DNS:host.docker.internal,DNS:localhost" \
        -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1 \
        || { rm -f "$dir/server.key" "$dir/server.crt"; _pg_die "openssl req (self-signed certificate) failed"; return 1; }
    chown postgres:postgres "$dir/server.crt" "$dir/server.key" \
        && chmod 0600 "$dir/server.key" && chmod 0644 "$dir/server.crt" \
        || { _pg_die "cannot set owner/mode of $dir/server.key"; return 1; }
}

# Writes sprocket.conf (included from postgresql.conf) and pg_hba.conf; sets _pg_changed=1
# when either changed.
_pg_ensure_config() {
    local dir=$SPROCKET_PG_DIR gw=$1 conf hba
    conf="# Written by scripts/lib/postgres.sh (pg_ensure); rewritten on every run.
listen_addresses = '127.0.0.1,$gw'
port = $SPROCKET_PG_PORT
unix_socket_directories = '$SPROCKET_PG_SOCKET_DIR'
password_encryption = scram-sha-256
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
logging_collector = off
# Statements may carry passwords or verifiers: never log them, not even failing ones.
log_statement = 'none'
log_min_error_statement = panic
log_min_duration_statement = -1"
    hba="# Written by scripts/lib/postgres.sh (pg_ensure); rewritten on every run.
# TYPE  DATABASE  USER      ADDRESS          METHOD
local   all       postgres                   peer
host    all       all       127.0.0.1/32     scram-sha-256
host    all       all       172.16.0.0/12    scram-sha-256
host    all       all       10.0.0.0/8       scram-sha-256"
    _pg_write_if_changed "$dir/sprocket.conf" "$conf" || return 1
    _pg_write_if_changed "$dir/pg_hba.conf" "$hba" || return 1
    if ! grep -qxF "include = 'sprocket.conf'" "$dir/postgresql.conf"; then
        printf "\n# sprocket settings (scripts/lib/postgres.sh)\ninclude = 'sprocket.conf'\n" >>"$dir/postgresql.conf" \
            || { _pg_die "cannot append to $dir/postgresql.conf"; return 1; }
        _pg_log "postgresql.conf now includes sprocket.conf"
        _pg_changed=1
    fi
}

# Starts the server with pg_ctl and waits (at most SPROCKET_PG_WAIT s) for pg_isready.
_pg_start() {
    local dir=$SPROCKET_PG_DIR waited=0
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$SPROCKET_PG_PORT" 2>/dev/null)" ]]; then
        _pg_die "port $SPROCKET_PG_PORT is already in use by something else: $(ss -Hltnp "sport = :$SPROCKET_PG_PORT" | head -n 3 | tr -s ' ' | tr '\n' ';')"
        return 1
    fi
    _pg_log "starting PostgreSQL (pg_ctl, log $dir/server.log)"
    # Descriptors beyond stdio are closed first: the postmaster outlives its caller and would
    # otherwise hold whatever the caller had open (see engine_ensure in engine.sh).
    ( for fd in /proc/$BASHPID/fd/*; do
          fd=${fd##*/}
          if (( fd > 2 )); then eval "exec $fd>&-"; fi
      done 2>/dev/null
      _pg_as_postgres "$SPROCKET_PG_BIN/pg_ctl" start -D "$dir" -l "$dir/server.log" \
          -s -w -t "$SPROCKET_PG_WAIT" </dev/null >&2 ) || {
        _pg_log_tail
        _pg_die "pg_ctl start failed"; return 1
    }
    while ! "$SPROCKET_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$SPROCKET_PG_PORT" -t 1; do
        if (( waited >= SPROCKET_PG_WAIT )); then
            _pg_log_tail
            _pg_die "PostgreSQL started but 127.0.0.1:$SPROCKET_PG_PORT does not answer after ${SPROCKET_PG_WAIT}s"
            return 1
        fi
        sleep 1; waited=$((waited + 1))
    done
}

# Restarts (fast) a running server, for settings a reload does not apply.
_pg_restart() {
    _pg_log "restarting PostgreSQL ($*)"
    _pg_stop_running || return 1
    _pg_start
}

_pg_stop_running() {
    _pg_as_postgres "$SPROCKET_PG_BIN/pg_ctl" stop -D "$SPROCKET_PG_DIR" -m fast -s -w -t 60 >&2 \
        || { _pg_die "pg_ctl stop -m fast failed"; return 1; }
}

# A running server: reload (every run), restart when a restart-only setting
# (port, socket directory, listen addresses) differs from what it runs with.
_pg_apply_running() {
    local gw=$1 errs want have
    local pid_port pid_sock
    pid_port=$(_pg_pidfile_line 4); pid_sock=$(_pg_pidfile_line 5)
    if [[ "$pid_port" != "$SPROCKET_PG_PORT" || "$pid_sock" != "$SPROCKET_PG_SOCKET_DIR" ]]; then
        _pg_restart "runs on port ${pid_port:-?} socket ${pid_sock:-?}, wanted $SPROCKET_PG_PORT $SPROCKET_PG_SOCKET_DIR"
        return
    fi
    # Reloaded on every run (cheap), not only when this run changed a file: a run that
    # failed after writing the files must not leave the server on the old ones. ("setting
    # could not be applied" marks a restart-only setting that differs: handled below.)
    errs=$(_pg_psql_super -At -c "select coalesce(sourcefile, '?') || ':' || coalesce(sourceline, 0) || ': ' || error from pg_file_settings where error is not null and error <> 'setting could not be applied' union all select 'pg_hba.conf:' || coalesce(line_number, 0) || ': ' || error from pg_hba_file_rules where error is not null") \
        || { _pg_die "cannot check the configuration files"; return 1; }
    [[ -z "$errs" ]] || { _pg_die "the configuration files have errors: $errs"; return 1; }
    if (( _pg_changed )); then _pg_log "configuration changed: reloading"; fi
    _pg_as_postgres "$SPROCKET_PG_BIN/pg_ctl" reload -D "$SPROCKET_PG_DIR" -s >&2 \
        || { _pg_die "pg_ctl reload failed"; return 1; }
    want="127.0.0.1,$gw"
    have=$(_pg_psql_super -At -c 'show listen_addresses') \
        || { _pg_die "cannot query the running server"; return 1; }
    if [[ "$have" != "$want" ]]; then
        _pg_restart "listen_addresses is '$have', wanted '$want'"
        return
    fi
    "$SPROCKET_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$SPROCKET_PG_PORT" -t 5 \
        || { _pg_die "PostgreSQL runs but 127.0.0.1:$SPROCKET_PG_PORT does not answer"; return 1; }
}

# The administrator role as on a managed database: LOGIN CREATEROLE CREATEDB, not a
# superuser, password set from the environment (never in argv, never logged).
_pg_ensure_admin() {
    local out
    _SPROCKET_PG_PW=$SPROCKET_PG_ADMIN_PASSWORD _pg_psql_super -v admin="$SPROCKET_PG_ADMIN" -v admindb="$SPROCKET_PG_ADMIN_DB" <<'SQL' || { _pg_die "cannot create/alter role $SPROCKET_PG_ADMIN"; return 1; }
\getenv pw _SPROCKET_PG_PW
\if :{?pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'admin password missing from the environment'; END $$;
\endif
SET log_min_error_statement = panic;
SET log_statement = 'none';
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'admin') AS create_admin \gset
\if :create_admin
CREATE ROLE :"admin";
\endif
ALTER ROLE :"admin" WITH LOGIN CREATEROLE CREATEDB NOSUPERUSER NOREPLICATION NOBYPASSRLS PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'admindb') AS create_db \gset
\if :create_db
CREATE DATABASE :"admindb" OWNER :"admin";
\endif
SQL
    # The password really works over TCP with TLS, as a client in a task would connect.
    out=$(PGPASSWORD=$SPROCKET_PG_ADMIN_PASSWORD PGCONNECT_TIMEOUT=5 "$SPROCKET_PG_BIN/psql" -X -At \
        "host=127.0.0.1 port=$SPROCKET_PG_PORT user=$SPROCKET_PG_ADMIN dbname=$SPROCKET_PG_ADMIN_DB sslmode=require" \
        -c "select r.rolsuper, s.ssl from pg_roles r, pg_stat_ssl s where r.rolname = current_user and s.pid = pg_backend_pid()" 2>&1) \
        || { _pg_die "$SPROCKET_PG_ADMIN cannot log in over TCP+TLS: $out"; return 1; }
    [[ "$out" == "f|t" ]] \
        || { _pg_die "$SPROCKET_PG_ADMIN over TCP: expected not superuser and TLS, got '$out'"; return 1; }
}

# The administrator's password kept with the cluster (made once: 40 random alphanumerics,
# root-only), for callers that give none; it goes when the data directory does.
_pg_admin_password_from_file() {
    local f="$SPROCKET_PG_DIR/sprocket-admin-password" pw
    if [[ ! -s "$f" ]]; then
        pw=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40) || true
        [[ ${#pw} -eq 40 ]] || { _pg_die "cannot make a random password"; return 1; }
        (umask 077 && printf '%s' "$pw" >"$f.tmp" && mv "$f.tmp" "$f") \
            || { _pg_die "cannot write $f"; return 1; }
    fi
    cat "$f"
}

# Prints the administrator's password kept with the cluster (see SPROCKET_PG_ADMIN_PASSWORD),
# for seeding it into the secrets file an environment reads. Never call it where its output is
# shown.
pg_admin_password() {
    _pg_settings || return 1
    [[ -s "$SPROCKET_PG_DIR/sprocket-admin-password" ]] \
        || { _pg_die "no $SPROCKET_PG_DIR/sprocket-admin-password: run pg_ensure first"; return 1; }
    cat "$SPROCKET_PG_DIR/sprocket-admin-password"
}

# pg_seed_dotenv FILE KEY: makes KEY=<the administrator's password> the one KEY line of the
# dotenv FILE (made 0600 in a 0700 folder when missing; its other lines stay as they are), so
# the environment that reads FILE provisions as this server's administrator. Prints nothing.
pg_seed_dotenv() {
    local file=$1 key=$2 pw tmp
    [[ -n "$file" && "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || { _pg_die "usage: pg_seed_dotenv FILE KEY"; return 1; }
    pw=$(pg_admin_password) || return 1
    mkdir -p "$(dirname "$file")" && chmod 700 "$(dirname "$file")" 2>/dev/null || true
    tmp=$(mktemp "$file.XXXXXX") || { _pg_die "cannot write next to $file"; return 1; }
    chmod 600 "$tmp"
    { [[ -f "$file" ]] && grep -v "^$key=" "$file"; printf '%s=%s\n' "$key" "$pw"; } >"$tmp" \
        && mv "$tmp" "$file" || { rm -f "$tmp"; _pg_die "cannot write $file"; return 1; }
}

# One pg_ensure at a time (the tests run two at once, each ensuring the server): two at once
# altered the administrator's role together and one failed with "tuple concurrently updated".
# The lock file sits beside the data folder (initdb wants that one empty).
pg_ensure() {
    local rc fd
    _pg_settings || return 1
    command -v flock >/dev/null 2>&1 || { _pg_die "flock missing (util-linux)"; return 1; }
    mkdir -p "$(dirname "$SPROCKET_PG_DIR")" || return 1
    exec {fd}>>"$SPROCKET_PG_DIR.lock" || { _pg_die "cannot open $SPROCKET_PG_DIR.lock"; return 1; }
    if ! flock -w 120 "$fd"; then
        exec {fd}>&-
        _pg_die "another pg_ensure holds $SPROCKET_PG_DIR.lock for more than 120s"
        return 1
    fi
    _pg_ensure_locked; rc=$?
    exec {fd}>&-
    return "$rc"
}

_pg_ensure_locked() {
    local gw
    _pg_changed=0
    [[ $EUID -eq 0 ]] || { _pg_die "pg_ensure needs root (installs packages, runs the server as postgres)"; return 1; }
    gw=$(pg_gateway_address) || return 1
    _pg_ensure_binaries || return 1
    if [[ ! -d "$SPROCKET_PG_SOCKET_DIR" ]]; then
        mkdir -p "$SPROCKET_PG_SOCKET_DIR" && chown postgres:postgres "$SPROCKET_PG_SOCKET_DIR" \
            && chmod 2775 "$SPROCKET_PG_SOCKET_DIR" \
            || { _pg_die "cannot create $SPROCKET_PG_SOCKET_DIR"; return 1; }
    fi
    _pg_ensure_datadir || return 1
    if [[ -z "${SPROCKET_PG_ADMIN_PASSWORD:-}" ]]; then
        SPROCKET_PG_ADMIN_PASSWORD=$(_pg_admin_password_from_file) || return 1
    fi
    _pg_ensure_cert "$gw" || return 1
    _pg_ensure_config "$gw" || return 1
    if _pg_running; then
        _pg_log "already running (pid $(_pg_pidfile_line 1))"
        _pg_apply_running "$gw" || return 1
    else
        _pg_start || return 1
    fi
    _pg_ensure_admin || return 1
    _pg_log "PostgreSQL 15 on $gw:$SPROCKET_PG_PORT and 127.0.0.1:$SPROCKET_PG_PORT (admin $SPROCKET_PG_ADMIN, not a superuser; data $SPROCKET_PG_DIR)"
}

pg_stop() {
    _pg_settings || return 1
    if [[ ! -f "$SPROCKET_PG_DIR/PG_VERSION" ]]; then
        _pg_log "no cluster in $SPROCKET_PG_DIR: nothing to stop"
        return 0
    fi
    if ! _pg_running; then
        _pg_log "not running ($SPROCKET_PG_DIR)"
        return 0
    fi
    _pg_log "stopping PostgreSQL (pid $(_pg_pidfile_line 1), pg_ctl stop -m fast)"
    _pg_stop_running || return 1
    _pg_log "stopped"
}

pg_destroy() {
    _pg_settings || return 1
    pg_stop || return 1
    if [[ ! -e "$SPROCKET_PG_DIR" ]]; then
        _pg_log "no $SPROCKET_PG_DIR: nothing to remove"
        return 0
    fi
    if [[ ! -f "$SPROCKET_PG_DIR/PG_VERSION" && -n "$(ls -A "$SPROCKET_PG_DIR" 2>/dev/null)" ]]; then
        _pg_die "$SPROCKET_PG_DIR holds no PostgreSQL cluster (no PG_VERSION); refusing to remove it"; return 1
    fi
    rm -rf -- "$SPROCKET_PG_DIR" || { _pg_die "rm -rf $SPROCKET_PG_DIR failed"; return 1; }
    _pg_log "removed $SPROCKET_PG_DIR"
}
