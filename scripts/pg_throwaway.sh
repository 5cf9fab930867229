#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests and print shell assignments:
#   eval "$(bash scripts/pg_throwaway.sh)"; export PANDA_TEST_PG_URL
# Stop it with:
#   runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop; rm -rf "$PGDATA"
# Runs as root (initdb refuses root, so the server runs as the postgres user) or
# as an ordinary user who owns the data directory. Trust auth: tests only.
set -euo pipefail
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGPORT=${PGPORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
PGDATA=$(mktemp -d /tmp/panda-pg.XXXXXX)
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$PGDATA"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 30 -o \
  "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres panda_test
echo "PGBIN=$PGBIN PGDATA=$PGDATA PANDA_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PGPORT/panda_test"
