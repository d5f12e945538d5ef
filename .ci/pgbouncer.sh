#!/usr/bin/env bash
# Starts a PgBouncer (Debian's package) in transaction pooling mode in front
# of the PostgreSQL server on 127.0.0.1:5432, listening on 127.0.0.1:$PORT,
# set the way deploy/k8s/overlays/prod/pgbouncer.ini sets the prod one where
# caravan depends on it (pool mode, reset query, ignored startup parameter,
# statement timeout). Every database of the server is reachable through it
# (`*`), as any role of the server (trust, looked up with auth_query), so the
# tests' fresh databases and roles need no configuration.
#
#   .ci/pgbouncer.sh DIR PORT [POOL]   -> prints the pooler's URL
#
# POOL: server connections per database (default 4: the tests' pools are
# small and run in parallel; give caravan's pool size, 10, to measure).
set -euo pipefail

DIR=$1
PORT=$2
POOL=${3:-4}
mkdir -p "$DIR"
cat >"$DIR/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=5432 connect_query='SET statement_timeout = 10000'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/users.txt
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = \$1
pool_mode = transaction
server_reset_query = DEALLOCATE ALL
server_reset_query_always = 1
ignore_startup_parameters = extra_float_digits
default_pool_size = $POOL
max_client_conn = 2000
server_idle_timeout = 10
query_wait_timeout = 10
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
echo '"postgres" ""' >"$DIR/users.txt"
if [ -f "$DIR/pgbouncer.pid" ] && kill -0 "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null; then
  kill "$(cat "$DIR/pgbouncer.pid")"
  sleep 1
fi
# PgBouncer refuses to run as root.
chown -R postgres "$DIR"
runuser -u postgres -- pgbouncer -d "$DIR/pgbouncer.ini"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
for _ in $(seq 1 30); do
  psql "$URL" -Atqc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.5
done
psql "$URL" -Atqc 'SELECT 1' >/dev/null
echo "$URL"
