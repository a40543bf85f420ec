#!/usr/bin/env bash
# `make demo`: belay on a throw-away cluster of its own. Runs the C++ order workflow
# (client/examples/order_workflow.cpp): steps, a retry, a sleep, an event, child tasks,
# and a worker killed with SIGKILL midway. `make demo-sql` runs the SQL walk-through.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-client}
dir=$(mktemp -d /tmp/belay-demo.XXXXXX)
trap 'scripts/cluster.sh stop "$dir"; rm -rf "$dir"' EXIT
scripts/cluster.sh start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
if [[ $what == sql ]]; then
  psql -X -q -v ON_ERROR_STOP=1 -f demo/walkthrough.sql
else
  psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION belay'
  echo
  echo "=== belay demo: an order workflow run by C++ workers (client/examples/order_workflow.cpp) ==="
  echo
  build/examples/order_workflow demo
fi
