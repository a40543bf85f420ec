#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for belay's demo, tests and benchmarks.
#
#   scripts/cluster.sh start DIR [extra postgresql.conf lines...]
#   scripts/cluster.sh stop DIR
#   scripts/cluster.sh restart DIR [pg_ctl -m MODE]   (MODE: fast | immediate)
#
# The cluster lives in DIR (data in DIR/data, socket and log in DIR), listens on a free
# port on 127.0.0.1 only, and runs as the `postgres` user when we are root (initdb
# refuses root). DIR/env holds PGHOST, PGPORT and PGUSER for the callers to source.
# It never touches the system cluster on 5432.
set -euo pipefail

PGBIN=${PGBIN:-$(/usr/lib/postgresql/15/bin/pg_config --bindir)}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local port
  for port in $(seq 54400 54999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      [[ -e "/tmp/.s.PGSQL.$port" ]] && continue
      echo "$port"; return 0
    fi
  done
  echo "cluster.sh: no free port in 54400-54999" >&2; return 1
}

start() {
  local dir=$1; shift
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; chmod 755 "$dir"; fi
  local port; port=$(free_port)
  as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "shared_preload_libraries = 'belay'"
    echo "belay.database = 'postgres'"
    echo "max_connections = 100"
    echo "log_min_messages = warning"
    echo "log_line_prefix = '%m [%p] %b '"
    local line
    for line in "$@"; do echo "$line"; done
  } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
  # A free port can still be taken before the server binds it (a client socket from the
  # ephemeral range, which overlaps ours): try the next free one a few times.
  local tries
  for tries in 1 2 3 4 5; do
    if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
      break
    fi
    ((tries == 5)) && { echo "cluster.sh: the server did not start; see $dir/server.log" >&2; return 1; }
    port=$(free_port)
    echo "port = $port" | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
  done
  cat >"$dir/env" <<ENV
export PGHOST='$dir'
export PGPORT='$port'
export PGUSER=postgres
export PGDATABASE=postgres
export BELAY_CLUSTER_DIR='$dir'
export BELAY_DATABASE_URL='postgresql://postgres@127.0.0.1:$port/postgres'
ENV
  echo "belay: scratch cluster on port $port in $dir" >&2
}

stop() {
  local dir=$1
  [[ -d "$dir/data" ]] || return 0
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

restart() {
  local dir=$1 mode=${2:-fast}
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null 2>&1 || true
  as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  restart) restart "$@" ;;
  *) echo "usage: $0 start|stop|restart DIR" >&2; exit 2 ;;
esac
