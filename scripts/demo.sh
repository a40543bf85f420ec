#!/usr/bin/env bash
# `make demo`: a walk-through of belay on a throw-away cluster of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/belay-demo.XXXXXX)
trap 'scripts/cluster.sh stop "$dir"; rm -rf "$dir"' EXIT
scripts/cluster.sh start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
psql -X -q -v ON_ERROR_STOP=1 -f demo/walkthrough.sql
