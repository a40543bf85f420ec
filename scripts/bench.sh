#!/usr/bin/env bash
# `make bench`: belay's benchmarks, each against a raw-SQL (or OS) baseline measured in
# the same run, on a throw-away cluster (scripts/cluster.sh; never the system one).
#
# Expects belay built and installed (`make bench` does both first). Builds the C++ bench
# programs (bench/*.cpp) into build/bench/, starts a scratch cluster, prints the machine,
# the server version and settings, runs every benchmark (3 runs each, ours and the baseline
# alternating, median reported), prints a table and writes it as Markdown to
# bench/results/<UTC date-time>.md and bench/results/latest.md.
#
# Knobs (environment):
#   BENCH_SECONDS=10       duration of each pgbench run (and of the latency run, the timer's
#                          span; a drain is bounded at 2× this)
#   BENCH_QUICK=1          for development: every task count 10× smaller, 1 run instead of 3
#   BENCH_ONLY="1 3 7"     run only these figures (1..8)
#   BENCH_DRAIN_BATCH=100  k of the raw drain baseline (figure 4)
#   BENCH_DRAIN_PREFETCH=1000  the Worker's prefetch in figure 4 (a WorkerOptions setting)
#   BENCH_PG_CONF="a = b;c = d"   extra postgresql.conf lines, ';'-separated
#   BENCH_STATEMENTS=1     preload pg_stat_statements and print the top statements at the
#                          end (diagnosis; it costs a little on every statement)
#   BENCH_KEEP=1           leave the cluster running at the end (its directory is printed)
#
# No figure takes a shortcut a user would not get: fsync and synchronous_commit stay on,
# every table is logged, belay runs with its guarantees. The settings are printed and
# written with the results.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_ONLY=${BENCH_ONLY:-1 2 3 4 5 6 7 8}
BENCH_DRAIN_BATCH=${BENCH_DRAIN_BATCH:-100}
BENCH_DRAIN_PREFETCH=${BENCH_DRAIN_PREFETCH:-1000}
if [[ $BENCH_QUICK == 1 ]]; then scale=10; runs=1; else scale=1; runs=3; fi
# Sizes that define a figure (spawn_many's 100 and 1,000, the 1,000 shallow tasks, 500/s)
# stay as they are in quick mode; the task counts shrink.
drain_tasks=$((200000 / scale))
timer_tasks=$((1000 / scale))
deep_tasks=$((1000000 / scale))
bloat_tasks=$((1000000 / scale))
bloat_first=$((100000 / scale))
# (3) must not run dry: more tasks than 8 clients can take in BENCH_SECONDS on any
# machine we know of (checked after every run).
claim_prefill=$((BENCH_SECONDS * 20000))
drain_max_seconds=$((BENCH_SECONDS * 2))

want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------- build
if [[ ! -f build/libbelay_client.a ]]; then
  make -s -C "$root" client
fi
mkdir -p build/bench
for src in bench/*.cpp; do
  name=$(basename "$src" .cpp)
  out=build/bench/$name
  if [[ ! $out -nt $src || ! $out -nt bench/common.hpp || ! $out -nt build/libbelay_client.a ]]; then
    echo "bench: building $out" >&2
    g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread -Iclient/include "$src" build/libbelay_client.a \
      -lpqxx -lpq -pthread -o "$out"
  fi
done

# ---------------------------------------------------------------------------- cluster
dir=$(mktemp -d /tmp/belay-bench.XXXXXX)
chmod 755 "$dir"
stop_cluster() {
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "bench: cluster left running in $dir (scripts/cluster.sh stop $dir)" >&2
  else
    scripts/cluster.sh stop "$dir"
    rm -rf "$dir"
  fi
}
trap stop_cluster EXIT

conf=("shared_buffers = 512MB" "max_wal_size = 4GB")
if [[ ${BENCH_STATEMENTS:-0} == 1 ]]; then
  conf+=("shared_preload_libraries = 'belay,pg_stat_statements'" "pg_stat_statements.track = all")
fi
if [[ -n ${BENCH_PG_CONF:-} ]]; then
  IFS=';' read -r -a extra <<<"$BENCH_PG_CONF"
  conf+=("${extra[@]}")
fi
# cluster.sh takes the first port in 54400-54999 that nothing listens on; a socket in
# TIME_WAIT on that port (the ephemeral range overlaps, and the benchmark opens thousands
# of connections) still makes the server's bind fail. Then we choose a port no socket in
# any state uses, and point the server (the later `port` line wins) and env at it.
unused_port() {
  local port
  for port in $(shuf -i 54400-54999); do
    [[ -n $(ss -Htan "( sport = :$port )" 2>/dev/null) || -e /tmp/.s.PGSQL.$port ]] && continue
    echo "$port"; return 0
  done
  return 1
}
port=""
for attempt in 1 2 3 4; do
  if scripts/cluster.sh start "$dir" "${conf[@]}" ${port:+"port = $port"}; then break; fi
  ((attempt < 4)) || { echo "bench: cannot start the scratch cluster; its log:" >&2; tail -n 5 "$dir/server.log" >&2; exit 1; }
  scripts/cluster.sh stop "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 755 "$dir"
  port=$(unused_port)
done
if [[ -n $port ]]; then
  sed -i "s/^export PGPORT=.*/export PGPORT='$port'/; s#@127.0.0.1:[0-9]*/#@127.0.0.1:$port/#" "$dir/env"
fi
# shellcheck disable=SC1091
. "$dir/env"
# Every client (psql, pgbench, the C++ programs) connects over TCP, as an application would.
export PGHOST=127.0.0.1

sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sql -f bench/setup.sql >/dev/null
if [[ ${BENCH_STATEMENTS:-0} == 1 ]]; then sql -c 'CREATE EXTENSION pg_stat_statements'; fi

res=$dir/results
mkdir -p "$res"
gen=$dir/scripts
mkdir -p "$gen"

# ---------------------------------------------------------------------------- header
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
cpu_model=$(lscpu 2>/dev/null | awk -F: '/^Model name/{gsub(/^ +/, "", $2); print $2; exit}')
cores=$(nproc)
mem=$(awk '/MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
pg_version=$(sql -c 'SELECT version()')
settings=$(sql -F ' | ' -c "SELECT name, current_setting(name) FROM pg_settings
  WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level',
                 'max_connections', 'autovacuum', 'autovacuum_naptime', 'checkpoint_timeout',
                 'max_wal_size', 'work_mem', 'shared_preload_libraries')
     OR name LIKE 'belay.%' ORDER BY name")
{
  echo "# belay benchmark, $stamp"
  echo
  if [[ $BENCH_QUICK == 1 ]]; then
    echo "**BENCH_QUICK=1: task counts 10× smaller, 1 run per figure. Not comparable with full runs.**"
    echo
  fi
  echo "- machine: $cpu_model, $cores cores, $mem RAM, Linux $(uname -r)"
  echo "- PostgreSQL: $pg_version"
  echo "- belay: extension $(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'belay'") as installed, built from commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n $(git status --porcelain -- src sql include client 2>/dev/null) ]] && echo ' with uncommitted changes in src/, sql/, include/ or client/')"
  echo "- runs: $runs per figure (median reported); BENCH_SECONDS=$BENCH_SECONDS"
  echo "- clients connect over TCP to 127.0.0.1; the cluster is a fresh initdb with the settings below"
  echo
  echo "| setting | value |"
  echo "| --- | --- |"
  echo "$settings" | sed 's/^/| /; s/$/ |/'
} >"$res/header.md"
cat "$res/header.md"
echo

# ---------------------------------------------------------------------------- helpers
# rec FIG SIDE VALUE: one run's figure; SIDE is ours or base.
rec() { echo "$3" >>"$res/$1.$2"; }
# bad FIG REASON: the figure is not valid (queue ran dry, lost tasks, errors).
bad() {
  echo "$2" >>"$res/$1.invalid"
  echo "  INVALID ($1): $2" >&2
}
note() { echo "- $*" >>"$res/notes.md"; }
say() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

reset_all() {
  sql -c 'TRUNCATE belay.tasks, belay.run_history, belay.checkpoints, belay.waits, bench.raw_tasks'
}
# Before every measured run, so runs start alike.
settle() {
  sql -c 'VACUUM ANALYZE belay.tasks, belay.run_history, belay.checkpoints, belay.waits, belay.queues, bench.raw_tasks' \
    -c 'CHECKPOINT'
}
# prefill_belay QUEUE N: N pending tasks through spawn_many, 10,000 per call.
prefill_belay() {
  sql -c "DO \$\$ BEGIN
    FOR b IN 0 .. ($2 - 1) / 10000 LOOP
      PERFORM belay.spawn_many('$1', 'noop',
        (SELECT jsonb_agg(jsonb_build_object('n', b * 10000 + i))
           FROM generate_series(1, least(10000, $2 - b * 10000)) i));
    END LOOP; END \$\$"
}
# prefill_raw QUEUE N: the same rows in the plain table.
prefill_raw() {
  sql -c "INSERT INTO bench.raw_tasks (task_id, queue, task_name, params, state, max_attempts, available_at, created_at)
          SELECT belay.uuidv7(), '$1', 'noop', jsonb_build_object('n', i), 'pending', 5, now(), now()
            FROM generate_series(1, $2) i"
}
# count_state TABLE QUEUE STATE
count_state() {
  sql -c "SELECT count(*) FROM $1 WHERE queue = '$2' AND state = '$3'"
}

# pgb SCRIPT CLIENTS: runs pgbench for BENCH_SECONDS; sets PGB_TPS and PGB_N (transactions
# processed). Returns 1 when the run is not clean (a client aborted, a transaction failed).
pgb() {
  local log=$dir/pgbench.log rc=0
  pgbench -n -M prepared -c "$2" -j 2 -T "$BENCH_SECONDS" -f "$1" >"$log" 2>&1 || rc=$?
  PGB_TPS=$(awk '/^tps = /{print $3; exit}' "$log")
  PGB_N=$(awk -F': ' '/actually processed/{print $2; exit}' "$log" | cut -d/ -f1)
  local failed
  failed=$(awk '/number of failed transactions/{print $5; exit}' "$log")
  if ((rc != 0)) || [[ -z $PGB_TPS ]] || [[ ${failed:-0} != 0 ]] || grep -qi 'abort' "$log"; then
    echo "  pgbench $1 exited $rc:" >&2
    grep -v '^progress' "$log" | tail -n 15 | sed 's/^/  | /' >&2
    return 1
  fi
}

# kv FILE KEY: a value from a bench program's key=value output.
kv() { awk -F= -v k="$2" '$1 == k {print $2; exit}' "$1"; }

# Not a benchmark shortcut but the product's own trade-off, said beside the figures anyway:
# the client library may commit some statements without waiting for the WAL flush.
if grep -q "synchronous_commit', 'off'" client/src/*.cpp 2>/dev/null; then
  note "the C++ client commits some of its own statements (claims, heartbeats; see client/src/session.cpp) with synchronous_commit = off for that transaction: figures 4, 5, 6 and 8 run through the Worker and include this; pgbench figures (1, 2, 3, 7) call the SQL functions with synchronous_commit = on"
fi

# ---------------------------------------------------------------------------- (1) spawn
if want 1; then
  say "(1) spawn, one per transaction, 8 clients, against a raw INSERT"
  for ((r = 1; r <= runs; r++)); do
    for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
      reset_all
      settle
      if [[ $side == ours ]]; then
        if pgb bench/spawn.sql 8; then
          rec 1 ours "$PGB_TPS"
          n=$(count_state belay.tasks bench pending)
          [[ $n == "$PGB_N" ]] || bad 1 "run $r: pgbench spawned $PGB_N tasks, belay.tasks holds $n pending"
        else bad 1 "run $r: spawn failed under pgbench"; fi
      else
        if pgb bench/raw_insert.sql 8; then rec 1 base "$PGB_TPS"; else bad 1 "run $r: raw INSERT failed"; fi
      fi
      say "  run $r $side: ${PGB_TPS:-?} tasks/s"
    done
  done
fi

# ---------------------------------------------------------------------------- (2) spawn_many
# The scripts are generated: a literal array of N params for ours (what Client::spawn_many
# sends), a literal multi-row INSERT ... RETURNING task_id of the same N rows for the raw
# side (the ids come back on both sides).
gen_spawn_many() {
  awk -v n="$1" 'BEGIN {
    printf "SELECT task_id FROM belay.spawn_many(%s, %s, %s[", "'"'"'bench'"'"'", "'"'"'noop'"'"'", "'"'"'"
    for (i = 1; i <= n; i++) printf "%s{\"n\": %d}", (i > 1 ? ", " : ""), i
    printf "]%s);\n", "'"'"'"
  }' >"$gen/spawn_many_$1.sql"
  awk -v n="$1" -v q="'" 'BEGIN {
    printf "INSERT INTO bench.raw_tasks (task_id, queue, task_name, params, headers, state, priority, max_attempts, available_at, created_at) VALUES\n"
    for (i = 1; i <= n; i++)
      printf "%s(belay.uuidv7(), %sbench%s, %snoop%s, %s{\"n\": %d}%s, %s{}%s, %spending%s, 0, 5, now(), now())\n", \
        (i > 1 ? "," : " "), q, q, q, q, q, i, q, q, q, q, q
    printf "RETURNING task_id;\n"
  }' >"$gen/raw_insert_$1.sql"
}
if want 2; then
  for size in 100 1000; do
    gen_spawn_many "$size"
    fig=2_$size
    say "(2) spawn_many of $size, 8 clients, against a multi-row INSERT"
    for ((r = 1; r <= runs; r++)); do
      for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
        reset_all
        settle
        if [[ $side == ours ]]; then
          if pgb "$gen/spawn_many_$size.sql" 8; then
            rec "$fig" ours "$(awk -v t="$PGB_TPS" -v n="$size" 'BEGIN{print t * n}')"
            n=$(count_state belay.tasks bench pending)
            ((n == PGB_N * size)) || bad "$fig" "run $r: $PGB_N calls of $size, belay.tasks holds $n pending"
          else bad "$fig" "run $r: spawn_many failed under pgbench"; fi
        else
          if pgb "$gen/raw_insert_$size.sql" 8; then
            rec "$fig" base "$(awk -v t="$PGB_TPS" -v n="$size" 'BEGIN{print t * n}')"
          else bad "$fig" "run $r: raw INSERT failed"; fi
        fi
        say "  run $r $side: ${PGB_TPS:-?} calls/s × $size"
      done
    done
  done
fi

# ---------------------------------------------------------------------------- (3) claim + complete
if want 3; then
  say "(3) claim + complete, one task per transaction, 8 clients, against raw SKIP LOCKED ($claim_prefill prefilled)"
  for ((r = 1; r <= runs; r++)); do
    for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
      reset_all
      if [[ $side == ours ]]; then prefill_belay bench "$claim_prefill"; else prefill_raw bench "$claim_prefill"; fi
      settle
      if [[ $side == ours ]]; then
        if pgb bench/claim_complete.sql 8; then
          rec 3 ours "$PGB_TPS"
          left=$(count_state belay.tasks bench pending)
          done_=$(count_state belay.tasks bench completed)
          running=$(count_state belay.tasks bench running)
          runs_=$(sql -c 'SELECT count(*) FROM belay.runs')
          ((left > 0)) || bad 3 "run $r: the queue ran dry (prefill $claim_prefill); the figure is a lower bound"
          [[ $done_ == "$PGB_N" && $runs_ == "$PGB_N" && $running == 0 ]] ||
            bad 3 "run $r: pgbench completed $PGB_N; belay.tasks has $done_ completed, $running running; belay.runs has $runs_"
          ((done_ + left == claim_prefill)) || bad 3 "run $r: $done_ completed + $left pending ≠ $claim_prefill spawned"
        else bad 3 "run $r: claim/complete failed under pgbench"; fi
      else
        if pgb bench/raw_claim_complete.sql 8; then
          rec 3 base "$PGB_TPS"
          left=$(count_state bench.raw_tasks bench pending)
          ((left > 0)) || bad 3 "run $r: the raw queue ran dry (prefill $claim_prefill); the baseline is a lower bound"
        else bad 3 "run $r: raw claim/complete failed"; fi
      fi
      say "  run $r $side: ${PGB_TPS:-?} tasks/s"
    done
  done
fi

# ---------------------------------------------------------------------------- (4) drain
if want 4; then
  for conc in 8 32; do
    fig=4_$conc
    say "(4) drain $drain_tasks tasks through the Worker at concurrency $conc, prefetch $BENCH_DRAIN_PREFETCH (bounded at ${drain_max_seconds}s), against a raw batch drain (k=$BENCH_DRAIN_BATCH)"
    for ((r = 1; r <= runs; r++)); do
      for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
        reset_all
        if [[ $side == ours ]]; then prefill_belay drain "$drain_tasks"; else prefill_raw drain "$drain_tasks"; fi
        settle
        out=$dir/drain.out
        if [[ $side == ours ]]; then
          if build/bench/drain --mode belay --queue drain --tasks "$drain_tasks" --concurrency "$conc" --prefetch "$BENCH_DRAIN_PREFETCH" \
            --max-seconds "$drain_max_seconds" >"$out"; then
            rec "$fig" ours "$(kv "$out" rate)"
            got=$(kv "$out" completed)
            done_=$(count_state belay.tasks drain completed)
            left=$(count_state belay.tasks drain pending)
            other=$(sql -c "SELECT count(*) FROM belay.tasks WHERE queue = 'drain' AND state NOT IN ('completed', 'pending')")
            runs_=$(sql -c 'SELECT count(*) FROM belay.runs')
            ((done_ >= got && done_ + left == drain_tasks && other == 0 && runs_ == done_)) ||
              bad "$fig" "run $r: worker counted $got completed; belay.tasks: $done_ completed, $left pending, $other other; belay.runs: $runs_"
            [[ $(kv "$out" all_done) == 1 ]] ||
              note "(4) c=$conc run $r ours: bounded at ${drain_max_seconds}s with $got of $drain_tasks done"
            ahead=$(($(kv "$out" claimed_at_stop) - got))
            ((ahead <= 2 * conc)) ||
              note "(4) c=$conc run $r ours: when the clock stopped the Worker held $ahead claimed, uncompleted tasks (concurrency $conc); stopping took $(kv "$out" stop_seconds) s"
          else bad "$fig" "run $r: the Worker drain failed"; fi
        else
          if build/bench/drain --mode raw --queue drain --tasks "$drain_tasks" --concurrency "$conc" \
            --batch "$BENCH_DRAIN_BATCH" --max-seconds "$drain_max_seconds" >"$out"; then
            rec "$fig" base "$(kv "$out" rate)"
            [[ $(kv "$out" all_done) == 1 ]] ||
              note "(4) c=$conc run $r raw: bounded at ${drain_max_seconds}s with $(kv "$out" completed) of $drain_tasks done"
          else bad "$fig" "run $r: the raw drain failed"; fi
        fi
        say "  run $r $side: $(kv "$out" rate) tasks/s ($(kv "$out" completed) in $(kv "$out" seconds) s)"
      done
    done
  done
fi

# ---------------------------------------------------------------------------- (5) latency
if want 5; then
  say "(5) spawn → handler start at 500 tasks/s, idle Worker, against a LISTEN/NOTIFY round trip"
  for ((r = 1; r <= runs; r++)); do
    for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
      reset_all
      settle
      out=$dir/latency.out
      mode=$([[ $side == ours ]] && echo belay || echo notify)
      if build/bench/latency --mode "$mode" --queue latency --rate 500 --seconds "$BENCH_SECONDS" >"$out"; then
        rec 5_p50 "$side" "$(kv "$out" latency_p50)"
        rec 5_p99 "$side" "$(kv "$out" latency_p99)"
        note "(5) run $r $side: the producer's call itself ($([[ $side == ours ]] && echo "spawn, one transaction" || echo "pg_notify transaction")) took p50 $(kv "$out" call_p50) ms, p99 $(kv "$out" call_p99) ms"
      else
        bad 5_p50 "run $r $side: $(kv "$out" lost) of $(kv "$out" sent) never arrived"
        bad 5_p99 "run $r $side: see p50"
      fi
      say "  run $r $side: p50 $(kv "$out" latency_p50) ms, p99 $(kv "$out" latency_p99) ms, max $(kv "$out" latency_max) ms (n=$(kv "$out" latency_n))"
    done
  done
fi

# ---------------------------------------------------------------------------- (6) timers
if want 6; then
  say "(6) $timer_tasks tasks sleeping to due times staggered over ${BENCH_SECONDS}s, against std::this_thread::sleep_until"
  for ((r = 1; r <= runs; r++)); do
    for side in $( ((r % 2)) && echo "ours base" || echo "base ours"); do
      reset_all
      settle
      out=$dir/timer.out
      mode=$([[ $side == ours ]] && echo belay || echo os)
      if build/bench/timer --mode "$mode" --queue timer --tasks "$timer_tasks" --lead 5 --span "$BENCH_SECONDS" >"$out"; then
        rec 6_p50 "$side" "$(kv "$out" claim_late_p50)"
        rec 6_p99 "$side" "$(kv "$out" claim_late_p99)"
        if [[ $side == ours ]]; then
          note "(6) run $r: handler start (client clock) is p50 $(kv "$out" start_late_p50) ms, p99 $(kv "$out" start_late_p99) ms, max $(kv "$out" start_late_max) ms after the due time; the claim's max $(kv "$out" claim_late_max) ms"
        fi
      else
        bad 6_p50 "run $r $side: completed $(kv "$out" completed) of $timer_tasks, missed $(kv "$out" missed)"
        bad 6_p99 "run $r $side: see p50"
      fi
      say "  run $r $side: p50 $(kv "$out" claim_late_p50) ms, p99 $(kv "$out" claim_late_p99) ms, max $(kv "$out" claim_late_max) ms"
    done
  done
fi

# ---------------------------------------------------------------------------- (7) depth
if want 7; then
  say "(7) claim + complete (+ respawn) at 1,000 pending against $deep_tasks pending + $deep_tasks finished"
  for ((r = 1; r <= runs; r++)); do
    for side in $( ((r % 2)) && echo "base ours" || echo "ours base"); do
      reset_all
      if [[ $side == ours ]]; then pending=$deep_tasks finished=$deep_tasks; else pending=1000 finished=0; fi
      sql -v pending="$pending" -v finished="$finished" -f bench/depth_fill.sql
      settle
      if pgb bench/depth_cycle.sql 8; then
        rec 7 "$side" "$PGB_TPS"
        left=$(count_state belay.tasks depth pending)
        done_=$(count_state belay.tasks depth completed)
        running=$(count_state belay.tasks depth running)
        ((left >= pending - 8 && left > 0)) || bad 7 "run $r $side: $left pending left of $pending (the queue must keep its depth)"
        ((done_ == finished + PGB_N && running == 0)) ||
          bad 7 "run $r $side: pgbench completed $PGB_N; belay.tasks has $done_ completed ($finished before), $running running"
      else bad 7 "run $r $side: the depth script failed under pgbench"; fi
      say "  run $r $([[ $side == ours ]] && echo deep || echo shallow): ${PGB_TPS:-?} cycles/s"
    done
  done
fi

# ---------------------------------------------------------------------------- (8) bloat
if want 8; then
  say "(8) $bloat_tasks tasks through the Worker with cleanup every second; sizes after $bloat_first and at the end (one run)"
  reset_all
  settle
  out=$dir/bloat.out
  if build/bench/bloat --queue bloat --tasks "$bloat_tasks" --first "$bloat_first" --concurrency 32 >"$out"; then
    rec 8 ours "$(kv "$out" late_peak)"
    rec 8 base "$(kv "$out" early_peak)"
    rec 8_end ours "$(kv "$out" last.total)"
    rec 8_end base "$(kv "$out" first.total)"
    for when in first last; do
      rec 8_dead "$([[ $when == last ]] && echo ours || echo base)" \
        "$(($(kv "$out" "$when.tasks.dead") + $(kv "$out" "$when.run_history.dead") + $(kv "$out" "$when.checkpoints.dead")))"
    done
  else
    bad 8 "the run failed: completed $(kv "$out" completed) of $bloat_tasks"
  fi
  cp "$out" "$res/bloat.out"
  say "  $(kv "$out" completed) tasks in $(kv "$out" seconds) s; peak total $(kv "$out" early_peak) → $(kv "$out" late_peak) bytes; at the two points $(kv "$out" first.total) → $(kv "$out" last.total); $(kv "$out" cleaned) cleaned up"
fi

# ---------------------------------------------------------------------------- table
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# The ratio is the median of the runs' own ratios: each run's figure over the baseline
# measured right beside it (noise that hits both sides of a pair cancels).
pair_ratio() {
  [[ -s $res/$1.ours && -s $res/$1.base ]] || return 0
  paste -d' ' "$res/$1.ours" "$res/$1.base" | awk '$2 > 0 {print $1 / $2}' | median
}
fmt() { # fmt UNIT VALUE
  [[ -n $2 ]] || { echo "—"; return; }
  case $1 in
    rate) awk -v v="$2" 'BEGIN {printf "%.0f/s", v}' ;;
    ms) awk -v v="$2" 'BEGIN {printf "%.2f ms", v}' ;;
    bytes) awk -v v="$2" 'BEGIN {printf "%.1f MB", v / 1048576}' ;;
    count) awk -v v="$2" 'BEGIN {printf "%.0f", v}' ;;
  esac
}
# row FIG LABEL UNIT BASELINE-LABEL TARGET-TEXT CHECK
#   CHECK: "ratio>=X", "ratio<=X", "ours>=X", "ours<=X" or "-"
row() {
  local fig=$1 label=$2 unit=$3 base_label=$4 target=$5 check=$6
  local ours base ratio met
  ours=$( [[ -s $res/$fig.ours ]] && median <"$res/$fig.ours" || true)
  base=$( [[ -s $res/$fig.base ]] && median <"$res/$fig.base" || true)
  ratio=$(pair_ratio "$fig")
  if [[ -s $res/$fig.invalid ]]; then
    met="INVALID: $(head -n 1 "$res/$fig.invalid")"
  elif [[ $check == - || -z $ours ]]; then
    met="—"
  else
    local what=${check%%[<>]=*} op limit value
    op=$(echo "$check" | grep -o '[<>]=')
    limit=${check#*=}
    value=$([[ $what == ratio ]] && echo "$ratio" || echo "$ours")
    met=$(awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN {
      ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "yes" : "no" }')
  fi
  printf '| %s | %s | %s | %s (%s) | %s | %s | %s |\n' "$fig" "$label" "$(fmt "$unit" "$ours")" \
    "$(fmt "$unit" "$base")" "$base_label" "$([[ -n $ratio ]] && printf '%.2f' "$ratio" || echo —)" "$target" "$met"
}

{
  cat "$res/header.md"
  echo
  echo "## Results"
  echo
  echo "| # | figure | ours | baseline | ratio | target | met? |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  want 1 && row 1 "spawn, 1 per transaction, 8 clients" rate "raw INSERT" "—" -
  want 2 && row 2_100 "spawn_many of 100, 8 clients (tasks)" rate "multi-row INSERT" "ratio ≥ 0.70" "ratio>=0.70"
  want 2 && row 2_1000 "spawn_many of 1,000, 8 clients (tasks)" rate "multi-row INSERT" "ratio ≥ 0.70" "ratio>=0.70"
  want 3 && row 3 "claim + complete, 1 per transaction, 8 clients" rate "raw SKIP LOCKED" "ratio ≥ 0.80" "ratio>=0.80"
  want 4 && row 4_8 "Worker drain, concurrency 8" rate "raw drain, k=$BENCH_DRAIN_BATCH" "≥ 66,000/s" "ours>=66000"
  want 4 && row 4_32 "Worker drain, concurrency 32" rate "raw drain, k=$BENCH_DRAIN_BATCH" "≥ 66,000/s" "ours>=66000"
  want 5 && row 5_p50 "spawn → handler start, p50, 500/s" ms "LISTEN/NOTIFY" "≤ 2 ms" "ours<=2"
  want 5 && row 5_p99 "spawn → handler start, p99, 500/s" ms "LISTEN/NOTIFY" "≤ 10 ms" "ours<=10"
  want 6 && row 6_p50 "timer: claim after due time, p50" ms "sleep_until" "—" -
  want 6 && row 6_p99 "timer: claim after due time, p99" ms "sleep_until" "≤ 50 ms" "ours<=50"
  want 7 && row 7 "claim + complete + respawn, deep (ours) vs 1,000 pending" rate "1,000 pending" "ratio ≥ 0.9" "ratio>=0.9"
  want 8 && row 8 "peak size of tasks+run_history+checkpoints over the last $bloat_first of $bloat_tasks tasks (ours) vs tasks $bloat_first–$((2 * bloat_first))" bytes "tasks $bloat_first–$((2 * bloat_first))" "bounded (ratio ≤ 2)" "ratio<=2"
  want 8 && row 8_end "the same size at the $bloat_tasks-th task (ours) vs at the $bloat_first-th (single samples)" bytes "at $bloat_first" "—" -
  want 8 && row 8_dead "dead tuples at the $bloat_tasks-th task (ours) vs at the $bloat_first-th" count "at $bloat_first" "—" -
  echo
  echo "How to read it: \"ours\" and \"baseline\" are medians of $runs run(s); \"ratio\" is the median of each run's"
  echo "ours ÷ the baseline measured right beside it (for latencies, lower is better; for (7) it is deep ÷ shallow;"
  echo "for (8) size at the end ÷ size after the first $bloat_first). No figure uses a shortcut (fsync, synchronous_commit"
  echo "and full_page_writes as above, logged tables, belay's guarantees intact)."
  echo
  echo "## What each figure is"
  echo
  want 1 && echo "1. pgbench, 8 clients, ${BENCH_SECONDS}s: \`belay.spawn\` (bench/spawn.sql) against an INSERT of the same row into"
  want 1 && echo "   \`bench.raw_tasks\` (\`LIKE belay.tasks INCLUDING ALL\`: same indexes, ids from \`belay.uuidv7()\`)."
  want 2 && echo "2. pgbench, 8 clients: \`belay.spawn_many\` with a literal array of 100 / 1,000 params against a literal multi-row"
  want 2 && echo "   INSERT of the same rows; both return the ids. Tasks per second."
  want 3 && echo "3. pgbench, 8 clients: \`belay.claim(qty 1)\` then \`belay.complete\`, two transactions, against"
  want 3 && echo "   \`UPDATE … WHERE task_id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)\` then an UPDATE to completed on the plain"
  want 3 && echo "   table. $claim_prefill tasks prefilled; a run where the queue ran dry is invalid."
  want 4 && echo "4. build/bench/drain: $drain_tasks tasks spawned up front, a \`belay::Worker\` with no-op handlers drains them"
  want 4 && echo "   (bounded at ${drain_max_seconds}s); the baseline is N threads each looping \`UPDATE … SKIP LOCKED LIMIT $BENCH_DRAIN_BATCH RETURNING\`"
  want 4 && echo "   and one \`UPDATE … WHERE task_id = ANY(…)\` per batch. Connection set-up is inside the timing on both sides."
  want 5 && echo "5. build/bench/latency: one spawn per transaction at a steady 500/s for ${BENCH_SECONDS}s (first second not counted);"
  want 5 && echo "   time from just before the spawn call to the handler's start in an idle Worker (concurrency 8) in the same"
  want 5 && echo "   process. Baseline: \`pg_notify\` in a transaction to a LISTENing connection, timed the same way."
  want 6 && echo "6. build/bench/timer: $timer_tasks tasks, each sleeping (\`TaskContext::sleep_until\`) to its own due time, one per"
  want 6 && echo "   slot over ${BENCH_SECONDS}s; lateness of the claim that starts its second run (\`run_started_at\`, database"
  want 6 && echo "   clock) after the due time. Baseline: \`std::this_thread::sleep_until\` on the same schedule."
  want 7 && echo "7. pgbench, 8 clients: claim + complete one task and spawn one (so the depth holds) at 1,000 pending, against"
  want 7 && echo "   $deep_tasks pending plus $deep_tasks completed tasks (each keeping its completing run) written directly as setup."
  want 8 && echo "8. build/bench/bloat: $bloat_tasks tasks through spawn_many (batches of 1,000, at most 20,000 unfinished, kept"
  want 8 && echo "   full to the end) and a Worker (concurrency 32) while another session runs \`belay.cleanup(NULL, interval '0')\`"
  want 8 && echo "   every second; autovacuum and belay's vacuum worker on, as configured. One run (it is a size, not a rate)."
  if [[ -s $res/notes.md ]]; then
    echo
    echo "## Notes from this run"
    echo
    cat "$res/notes.md"
  fi
  if ls "$res"/*.invalid >/dev/null 2>&1; then
    echo
    echo "## Invalid runs"
    echo
    for f in "$res"/*.invalid; do sed "s/^/- ($(basename "$f" .invalid)) /" "$f"; done
  fi
  echo
  echo "## Every run"
  echo
  echo "| # | ours | baseline |"
  echo "| --- | --- | --- |"
  for f in "$res"/*.ours; do
    fig=$(basename "$f" .ours)
    echo "| $fig | $(paste -sd' ' "$f") | $( [[ -f $res/$fig.base ]] && paste -sd' ' "$res/$fig.base") |"
  done
  if [[ -f $res/bloat.out ]]; then
    echo
    echo "## (8) peak total size in each stretch of $bloat_first tasks, in MB"
    echo
    awk -F= '/^peak\.[0-9]+=/ {printf "%s%.1f", (n++ ? " → " : ""), $2 / 1048576} END {print ""}' "$res/bloat.out"
    echo
    echo "## (8) sizes in bytes, after the first $bloat_first and at the end"
    echo
    echo "| relation | what | after $bloat_first | at the end |"
    echo "| --- | --- | --- | --- |"
    awk -F= '/^first\./ {k = substr($1, 7); first[k] = $2; order[++n] = k} /^last\./ {last[substr($1, 6)] = $2}
      END {for (i = 1; i <= n; i++) {k = order[i]; rel = k; sub(/\.[a-z]+$/, "", rel); what = k; sub(/.*\./, "", what);
           printf "| %s | %s | %s | %s |\n", rel, what, first[k], last[k]}}' "$res/bloat.out"
  fi
} >"$res/table.md"

mkdir -p bench/results
cp "$res/table.md" "bench/results/$stamp.md"
cp "$res/table.md" bench/results/latest.md
echo
sed -n '/^## Results/,$p' "$res/table.md"
echo
echo "written to bench/results/$stamp.md and bench/results/latest.md"

if [[ ${BENCH_STATEMENTS:-0} == 1 ]]; then
  echo
  echo "top statements by total time (pg_stat_statements):"
  sql -F ' | ' -c "SELECT round(total_exec_time)::text || ' ms', calls, round(mean_exec_time::numeric, 3) || ' ms',
                          left(regexp_replace(query, '\s+', ' ', 'g'), 110)
                     FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25"
fi
