# Shared helpers of the fault tests (sourced, not run: the runner runs test/fault/*.sh).
#
#   . "$(dirname "$0")/lib.bash" "$1"      # $1: the cluster directory (it has `env`)
#
# Every helper is bounded in time. A failing check calls `die`, which prints what failed,
# the tail of the server log, and exits 1. The cluster is left running.

set -Eeuo pipefail

if [[ $# -lt 1 || ! -f "$1/env" ]]; then
  echo "usage: bash $0 CLUSTER_DIR   (CLUSTER_DIR/env must exist; see scripts/cluster.sh)" >&2
  exit 2
fi
CLUSTER_DIR=$(cd "$1" && pwd)
# shellcheck disable=SC1091
. "$CLUSTER_DIR/env"
export PGDATABASE=postgres
# No statement of a test may hang the suite.
export PGOPTIONS="-c statement_timeout=30s -c lock_timeout=20s"
FAULT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # used by the scripts that source this file
ROOT=$(cd "$FAULT_DIR/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/belay-$TEST_NAME.XXXXXX")
chmod 777 "$TMP"
T_START=$SECONDS
LOG_START=$(stat -c %s "$CLUSTER_DIR/server.log" 2>/dev/null || echo 0)
CHECKS=0

BG_PIDS=()      # client processes this test started in the background
BG_BACKENDS=()  # server backends of those clients
CLEANUP_SQL=()  # statements to run on exit, pass or fail (e.g. dropping a queue)
cleanup() {
  local pid sql
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BG_BACKENDS[@]}"; do
    psql -X -q -A -t -c "SELECT pg_terminate_backend($pid)" >/dev/null 2>&1 || true
  done
  for sql in "${CLEANUP_SQL[@]}"; do psql -X -q -A -t -c "$sql" >/dev/null 2>&1 || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
# A die() inside $(...) exits only the subshell; the caller then lands here and stops quietly.
trap '[[ -f $TMP/died ]] && exit 1; die "unexpected error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

log() { printf '[%s %5.1fs] %s\n' "$TEST_NAME" "$(awk -v s=$((SECONDS - T_START)) 'BEGIN{print s}')" "$*"; }

LOG_GREP=   # an ERE: die() shows only the server log lines that match it (default: all)
FROZEN_PID= # a process this test stopped with SIGSTOP: die() lets it go on
die() {
  trap - ERR
  touch "$TMP/died"
  if [[ -n $FROZEN_PID ]]; then kill -CONT "$FROZEN_PID" 2>/dev/null || true; fi
  echo "FAIL [$TEST_NAME]: $*" >&2
  if [[ -f "$CLUSTER_DIR/server.log" ]]; then
    echo "--- server log lines written during this test${LOG_GREP:+ matching /$LOG_GREP/} (last 30):" >&2
    tail -c +$((LOG_START + 1)) "$CLUSTER_DIR/server.log" | grep -E "${LOG_GREP:-.}" | tail -n 30 >&2 || true
  fi
  exit 1
}

ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }

# q SQL: runs SQL (one implicit transaction), prints unaligned rows with '|' between
# fields. Dies with the server's message on any error.
q() {
  local out
  if ! out=$(psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$1" 2>&1); then
    die "query failed: $1
$out"
  fi
  [[ -z $out ]] || printf '%s\n' "$out"
}

# q_try SQL: like q, but returns psql's status instead of dying; output (with errors) on
# stdout.
q_try() { psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -c "$1" 2>&1; }

# sqlstate_of SQL: runs SQL, prints the SQLSTATE it fails with, or "ok".
sqlstate_of() {
  local out
  if out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$1" 2>&1); then
    echo ok
  else
    sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\):.*/\1/p' <<<"$out" | head -n 1
  fi
}

# wait_until SQL-BOOLEAN-QUERY TIMEOUT-SECONDS: polls the query on the server every 10 ms
# (each poll sees what has committed so far) until it returns true. Prints the database
# clock (epoch seconds) at which it first held, or nothing when it never did in time.
wait_until() {
  local cond=$1 timeout=$2
  psql -X -q -A -t -v ON_ERROR_STOP=1 -v cond="$cond" -v timeout="$timeout" <<'SQL' 2>&1 || die "wait_until failed: $cond"
CREATE FUNCTION pg_temp.belay_wait_until(cond text, timeout float8) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => timeout);
  holds boolean;
BEGIN
  LOOP
    EXECUTE cond INTO holds;
    IF holds THEN RETURN extract(epoch FROM clock_timestamp()); END IF;
    EXIT WHEN clock_timestamp() > deadline;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN NULL;
END $$;
SELECT pg_temp.belay_wait_until(:'cond', :'timeout');
SQL
}

db_now() { q "SELECT extract(epoch FROM clock_timestamp())"; }

# fcmp A OP B: float comparison (OP one of < <= > >=), status 0 when it holds.
fcmp() { awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN { exit !((op=="<" && a<b) || (op=="<=" && a<=b) || (op==">" && a>b) || (op==">=" && a>=b)) }'; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }

# server_up: status 0 when the server accepts connections.
server_up() { psql -X -q -A -t -c 'SELECT 1' >/dev/null 2>&1; }

# wait_server TIMEOUT: waits for the server to accept connections again.
wait_server() {
  local timeout=$1 start=$SECONDS
  until server_up; do
    ((SECONDS - start < timeout)) || die "the server did not accept connections within ${timeout} s"
    sleep 0.1
  done
}

worker_pid() { q "SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE backend_type = 'belay worker'"; }

# wait_worker TIMEOUT [OLD_PID]: waits for a belay worker (other than OLD_PID) to run,
# prints its pid.
wait_worker() {
  local timeout=$1 old=${2:-} start=$SECONDS pid
  while :; do
    pid=$(worker_pid 2>/dev/null || true)
    if [[ -n $pid && $pid != "$old" ]]; then echo "$pid"; return 0; fi
    ((SECONDS - start < timeout)) || die "no belay worker (other than pid '${old}') within ${timeout} s; pg_stat_activity has: $(worker_pid || true)"
    sleep 0.1
  done
}

# fresh_queue NAME: drops the queue (and its tasks) if it exists, then creates it.
fresh_queue() {
  q "SELECT belay.drop_queue(queue) FROM belay.list_queues() WHERE queue = '$1'" >/dev/null
  q "SELECT belay.create_queue('$1')" >/dev/null
}

finish() { log "passed: $CHECKS checks in $((SECONDS - T_START)) s"; }

# spawn Q NAME [PARAMS] [OPTIONS]: prints the new task_id.
spawn() {
  local params=${3:-'{}'} options=${4:-'{}'}
  q "SELECT task_id FROM belay.spawn('$1', '$2', '$params', '$options')"
}

# claim_one Q WORKER LEASE_SECONDS EXPECTED_TASK_ID: claims one task, which must be the
# expected one; prints its run_id.
claim_one() {
  local row
  row=$(q "SELECT run_id || '|' || task_id FROM belay.claim('$1', '$2', 1, $3)")
  [[ ${row#*|} == "$4" ]] || die "claim on $1 returned '${row}', expected task $4"
  echo "${row%%|*}"
}

# Scripted sessions: a psql that reads from a FIFO, so a test can hold a transaction open
# in it while other sessions act, and go on step by step.
#   session_start NAME        starts it (output in $TMP/NAME.out)
#   session_run NAME SQL      sends SQL and waits (10 s at most) until it has run
#   session_send NAME SQL     sends SQL without waiting
#   session_pid NAME          its backend pid
#   session_end NAME          closes its input and waits for it to exit
declare -A SESSION_FD SESSION_CLIENT SESSION_STEP
session_start() {
  local name=$1 fifo="$TMP/$1.fifo" fd
  mkfifo "$fifo"
  (
    # Not the other sessions' FIFOs: they must see the end of input when closed.
    for fd in "${SESSION_FD[@]}"; do exec {fd}>&-; done
    exec psql -X -q -A -t -v ON_ERROR_STOP=1 <"$fifo" >"$TMP/$name.out" 2>&1
  ) &
  SESSION_CLIENT[$name]=$!
  BG_PIDS+=("$!")
  exec {fd}>"$fifo"
  SESSION_FD[$name]=$fd
  SESSION_STEP[$name]=0
  session_run "$name" "\\o $TMP/$name.pid
SELECT pg_backend_pid();
\\o"
  BG_BACKENDS+=("$(session_pid "$name")")
}
session_send() { printf '%s\n' "$2" >&"${SESSION_FD[$1]}"; }
session_run() {
  local name=$1 step mark
  step=$((SESSION_STEP[$name] + 1))
  SESSION_STEP[$name]=$step
  mark="$TMP/$name.done.$step"
  session_send "$name" "$2"
  session_send "$name" "\\! touch $mark"
  for _ in $(seq 200); do
    [[ -f $mark ]] && return 0
    kill -0 "${SESSION_CLIENT[$name]}" 2>/dev/null || die "session $name exited: $(cat "$TMP/$name.out")"
    sleep 0.05
  done
  die "session $name did not finish within 10 s: $2"
}
session_pid() { cat "$TMP/$1.pid"; }
session_end() {
  local fd=${SESSION_FD[$1]}
  exec {fd}>&-
  wait "${SESSION_CLIENT[$1]}" || die "session $1 failed: $(cat "$TMP/$1.out")"
}

# wait_lock_wait PID: waits (10 s at most) until backend PID waits for a lock.
wait_lock_wait() {
  [[ -n $(wait_until "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1" 10) ]] ||
    die "backend $1 did not block on a lock: $(q "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE pid = $1")"
}

# crash_restarts: how many crash-restarts the server log shows since this test began.
crash_restarts() {
  tail -c +$((LOG_START + 1)) "$CLUSTER_DIR/server.log" | grep -c "all server processes terminated; reinitializing" || true
}

# wait_crash_restart BEFORE TIMEOUT: after a kill -9, waits until the postmaster has begun
# its crash restart (so that no connection made before it is mistaken for the restarted
# server), then until the server accepts connections again.
wait_crash_restart() {
  local before=$1 timeout=$2 start=$SECONDS
  until (($(crash_restarts) > before)); do
    ((SECONDS - start < timeout)) || die "the server log shows no crash restart within ${timeout} s of the kill"
    sleep 0.02
  done
  wait_server "$timeout"
}
