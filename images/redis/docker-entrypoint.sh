#!/bin/sh
# Entrypoint of sprocket-local/redis, with the interface of the upstream redis image's:
# args starting with "-" or a *.conf first arg are given to redis-server; redis-server
# started as root drops to the redis user after taking ownership of the data folder.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# Upstream tightens the default umask so the dump/AOF files are not world-readable.
um="$(umask)"
if [ "$um" = '0022' ]; then
    umask 0077
fi

exec "$@"
