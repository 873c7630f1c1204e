#!/usr/bin/env bash
# Runs the given command with TEST_DATABASE_URL set to a Postgres server:
# TEST_DATABASE_URL or DATABASE_URL if set; else a local server on
# 127.0.0.1:5432 that lets the postgres user in; else a throwaway cluster
# started for this run (installing Debian's postgresql package if need be)
# and removed afterwards. WITH_POSTGRES=throwaway skips straight to the
# throwaway cluster.
set -euo pipefail

if [ "${WITH_POSTGRES:-}" = throwaway ]; then
  unset TEST_DATABASE_URL DATABASE_URL
fi

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi
if [ -n "${DATABASE_URL:-}" ]; then
  export TEST_DATABASE_URL="$DATABASE_URL"
  exec "$@"
fi

local_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
if [ "${WITH_POSTGRES:-}" != throwaway ] && command -v psql >/dev/null 2>&1 && psql "$local_url" -Atqc 'select 1' >/dev/null 2>&1; then
  echo "with-postgres: using the server on 127.0.0.1:5432" >&2
  export TEST_DATABASE_URL="$local_url"
  exec "$@"
fi

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "with-postgres: installing PostgreSQL (Debian package postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  else
    echo "with-postgres: no Postgres found. Install PostgreSQL, or set TEST_DATABASE_URL to a server whose user may create databases." >&2
    exit 1
  fi
fi

dir=$(mktemp -d /tmp/authsvc-pg.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  runuser=$(command -v runuser || echo /usr/sbin/runuser)
  as=("$runuser" -u postgres --)
fi

port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port=$candidate
    break
  fi
done
[ -n "$port" ] || { echo "with-postgres: no free port found" >&2; exit 1; }

cleanup() {
  "${as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

echo "with-postgres: starting a throwaway cluster on 127.0.0.1:$port" >&2
"${as[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
  "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
"$@"
