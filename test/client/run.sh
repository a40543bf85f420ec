#!/usr/bin/env bash
# belay's C++ client tests (GoogleTest), then test/client/belayctl_test.sh if present.
#
#   test/client/run.sh [gtest flags, e.g. --gtest_filter=TaskContextTest.*]
#
# Needs a running scratch cluster with `CREATE EXTENSION belay` in database postgres and
# the belay background worker (scripts/cluster.sh start DIR; . DIR/env), i.e. PGHOST,
# PGPORT, PGUSER (or BELAY_DATABASE_URL) set; BELAY_CLUSTER_DIR for the restart test.
# Builds build/client_tests against build/libbelay_client.a; exits non-zero on failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PGDATABASE=${PGDATABASE:-postgres}
export BELAY_ROOT=$root

if [[ ! -f $root/build/libbelay_client.a ]] || [[ ${BELAY_CLIENT_REBUILD:-1} == 1 ]]; then
  make -s -C "$root" client >/dev/null || { echo "run.sh: make client failed" >&2; exit 1; }
fi

mkdir -p "$root/build"
echo "== building build/client_tests"
g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread -I"$root/client/include" \
  "$here"/*.cpp "$root/build/libbelay_client.a" -lpqxx -lpq -lgtest -o "$root/build/client_tests" ||
  { echo "run.sh: building the client tests failed" >&2; exit 1; }

status=0
echo "== build/client_tests"
start=$SECONDS
"$root/build/client_tests" "$@" || status=1
echo "client_tests: $((SECONDS - start)) s, exit status $status"

if [[ -f $here/belayctl_test.sh ]]; then
  echo "== belayctl_test.sh"
  bash "$here/belayctl_test.sh" || status=1
fi
exit $status
