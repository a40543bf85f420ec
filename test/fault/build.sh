#!/usr/bin/env bash
# Builds the C++ helpers of the fault tests into build/ at the repository root:
#   build/emit_race     (test/fault/emit_race.cpp, run by test/fault/emit_race.sh)
#   build/listen_wait   (test/fault/listen_wait.cpp, used by test/fault/timing.sh)
#   test/fault/build.sh [emit_race] [listen_wait]     (default: both)
# A binary newer than its source is kept. Other arguments are ignored: scripts/run-tests.sh
# runs every test/fault/*.sh with the cluster directory, and this one then just builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$root/build"
names=()
for arg in "$@"; do
  case $arg in emit_race | listen_wait) names+=("$arg") ;; esac
done
((${#names[@]} > 0)) || names=(emit_race listen_wait)
for name in "${names[@]}"; do
  src="$here/$name.cpp" bin="$root/build/$name"
  if [[ -x $bin && $bin -nt $src && $bin -nt $here/build.sh ]]; then
    continue
  fi
  echo "build.sh: building $bin"
  g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread "$src" -lpqxx -lpq -o "$bin.tmp.$$"
  mv "$bin.tmp.$$" "$bin"
done
