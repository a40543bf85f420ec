#!/usr/bin/env bash
# Runs every test suite of belay against one throw-away cluster (never the system one):
# pg_regress, pgTAP (pg_prove), the concurrency test, the client tests and the fault
# tests. Expects belay to be built and installed (`make test` does both first).
# Prints one line per suite and ends with "N passed, M failed".
# BELAY_SUITES="pg_regress pgtap" runs only the suites named (for development).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir=$(mktemp -d /tmp/belay-test.XXXXXX)
cleanup() { scripts/cluster.sh stop "$dir"; rm -rf "$dir"; }
trap cleanup EXIT
scripts/cluster.sh start "$dir" || { echo "cannot start the scratch cluster"; exit 1; }
# shellcheck disable=SC1091
. "$dir/env"

passed=0
failed=0
failures=()
suite() {
  local name=$1; shift
  [[ -z ${BELAY_SUITES:-} || " $BELAY_SUITES " == *" $name "* ]] || return 0
  local log="$dir/$name.log" start=$SECONDS
  echo "== $name"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "   ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "   FAILED ($((SECONDS - start)) s); its output:"
    sed 's/^/   | /' "$log" | tail -n 80
    [[ -f regression.diffs ]] && [[ $name == pg_regress ]] && sed 's/^/   | /' regression.diffs | head -n 120
  fi
}

run_regress() {
  make -s installcheck PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
}

run_pgtap() {
  psql -X -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS belay_tap' -c 'CREATE DATABASE belay_tap' &&
  psql -X -q -v ON_ERROR_STOP=1 -d belay_tap -c 'CREATE EXTENSION belay' -c 'CREATE EXTENSION pgtap' &&
  pg_prove -d belay_tap test/pgtap/*.sql
}

run_concurrency() {
  test/concurrency/build.sh && PGDATABASE=postgres "$root/build/claim_race"
}

psql -X -q -c 'CREATE EXTENSION IF NOT EXISTS belay' postgres >/dev/null

suite pg_regress run_regress
suite pgtap run_pgtap
suite concurrency run_concurrency
for fault in test/fault/*.sh; do
  [[ -e $fault ]] || continue
  suite "fault-$(basename "$fault" .sh)" bash "$fault" "$dir"
done
if [[ -x test/client/run.sh ]]; then
  suite client test/client/run.sh
fi

echo
if ((failed > 0)); then echo "failed suites: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
((failed == 0))
