#!/usr/bin/env bash
# Builds the concurrency test into build/claim_race at the repository root.
#   test/concurrency/build.sh        (from anywhere)
# Run it against a database with `CREATE EXTENSION belay`, libpq environment set:
#   build/claim_race [--threads N] [--tasks N] [--timeout SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$root/build"
cd "$here"
exec g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread claim_race.cpp -lpqxx -lpq -o "$root/build/claim_race"
