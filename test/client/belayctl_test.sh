#!/usr/bin/env bash
# belayctl against a running cluster: every command in table and --json mode, and the
# exit codes (0 ok, 1 server error, 2 usage, 3 not found, 4 cannot connect).
#
# Takes no arguments. Uses the cluster named by the PG* variables (PGHOST, PGPORT,
# PGUSER, PGDATABASE) with belay installed in PGDATABASE; works in its own queues and
# drops them at the end. BELAYCTL names the binary (default: build/belayctl).
# Prints ok / not ok lines and ends with "N passed, M failed"; exits non-zero on failure.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ctl=${BELAYCTL:-$root/build/belayctl}
# The PG* variables name the cluster; a BELAY_DATABASE_URL left in the environment would win.
unset BELAY_DATABASE_URL

passed=0
failed=0
tmp=$(mktemp -d /tmp/belayctl-test.XXXXXX)
q="ctl_test_$$"
q2="ctl_test_$$_b"

finish() {
  psql -X -q -c "SELECT belay.drop_queue('$q')" -c "SELECT belay.drop_queue('$q2')" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap finish EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1)); echo "not ok - $1"
  [[ -n ${2:-} ]] && echo "$2" | sed 's/^/#   /' | head -n 20
  return 0
}

# run ARGS...: runs belayctl; sets $out, $err and $rc.
run() {
  "$ctl" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# expect NAME RC ARGS...: belayctl ARGS exits with RC.
expect() {
  local name=$1 want=$2; shift 2
  run "$@"
  if [[ $rc -eq $want ]]; then ok "$name (exit $want)"
  else not_ok "$name: exit $rc, want $want" "$ "$ctl" $*"$'\n'"$out"$'\n'"$err"; fi
}

# has NAME PATTERN: the last output (stdout and stderr) matches the extended regex.
has() {
  if grep -Eq -- "$2" <<<"$out"$'\n'"$err"; then ok "$1"
  else not_ok "$1: no match for /$2/" "$out"$'\n'"$err"; fi
}

# json NAME [PYTHON]: the last stdout is one JSON document; PYTHON (an expression over
# `d`, the document) must be true.
json() {
  local name=$1 check=${2:-True}
  if python3 -c "import json,sys; d = json.load(sys.stdin); sys.exit(0 if ($check) else 1)" <<<"$out" 2>"$tmp/py"
  then ok "$name"
  else not_ok "$name: not JSON or ($check) is false" "$out"$'\n'"$(cat "$tmp/py")"; fi
}

# field EXPR: a value from the last JSON stdout.
field() { python3 -c "import json,sys; d = json.load(sys.stdin); print($1)" <<<"$out" 2>/dev/null; }

sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

if [[ ! -x $ctl ]]; then
  echo "not ok - $ctl is not built (make client)"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! sql "SELECT belay.create_queue('$q'); SELECT belay.create_queue('$q2')" >/dev/null; then
  echo "not ok - cannot create the test queues (is the cluster up, is belay installed in ${PGDATABASE:-?}?)"
  echo "0 passed, 1 failed"
  exit 1
fi

uuid_re='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
missing=0190b6a2-7c1e-7d3a-9f00-1a2b3c4d5e6f
unreachable='host=127.0.0.1 port=1 connect_timeout=2'

# --- help and usage ---------------------------------------------------------------------
expect "--help" 0 --help
has "--help lists the commands" 'queues.*' && has "--help lists stats" '^  stats '
expect "help" 0 help
has "help lists the commands" '^  cleanup '
expect "help tasks" 0 help tasks
has "help tasks shows its options" '--state S'
expect "spawn --help" 0 spawn --help
has "spawn --help shows its usage" 'usage: belayctl spawn <queue> <task_name>'
for cmd in queues tasks task emit cancel retry cleanup stats; do
  expect "$cmd --help" 0 "$cmd" --help
done
expect "no command" 2
expect "unknown command" 2 frobnicate
has "unknown command is named, with usage" 'unknown command "frobnicate"' && has "usage on unknown command" '^usage: belayctl'
expect "bad option" 2 tasks --bogus
has "bad option is named" 'unknown option --bogus'
expect "bad global option" 2 --bogus queues
expect "help of an unknown command" 2 help frobnicate
expect "missing argument" 2 spawn "$q"
expect "too many arguments" 2 task "$missing" extra
expect "option without its value" 2 tasks --limit
expect "--limit not a number" 2 tasks --limit many
expect "--limit 0" 2 tasks --limit 0
expect "unknown --state" 2 tasks --state scheduled
expect "--window 0" 2 stats --window 0
expect "--older-than negative" 2 cleanup --older-than -5
expect "task id not a UUID" 2 task not-a-uuid
expect "--json takes no value" 2 --json=yes queues
# Arguments are checked before connecting: bad JSON is a usage error even with no server.
expect "bad JSON in --params" 2 spawn "$q" t --params '{"a":'
has "bad JSON names the option" '--params is not valid JSON'
expect "bad JSON in --params, no server" 2 --db "$unreachable" spawn "$q" t --params '{bad'
expect "bad JSON in --options" 2 spawn "$q" t --options 'nope'
expect "--options not an object" 2 spawn "$q" t --options '[1, 2]'
expect "bad JSON in --payload" 2 emit "$q" ev --payload '{'

# --- cannot connect -----------------------------------------------------------------------
expect "unreachable server (--db)" 4 --db "$unreachable" queues
has "unreachable server message" '^belayctl: cannot connect'
expect "unreachable server, --json" 4 --db "$unreachable" --json tasks
BELAY_DATABASE_URL=$unreachable run queues
if [[ $rc -eq 4 ]]; then ok "BELAY_DATABASE_URL is used (exit 4)"; else not_ok "BELAY_DATABASE_URL: exit $rc, want 4" "$err"; fi
BELAY_DATABASE_URL=$unreachable expect "--db wins over BELAY_DATABASE_URL" 0 --db "" queues

# --- spawn --------------------------------------------------------------------------------
expect "spawn" 0 spawn "$q" plain --params '{"n": 1}'
has "spawn prints the id" "^$uuid_re created$"
expect "spawn --json" 0 --json spawn "$q" digest --params '{"n": 2}' --options '{"priority": 10, "max_attempts": 3}'
json "spawn --json is an object with task_id and created" 'd["created"] is True and len(d["task_id"]) == 36'
a=$(field 'd["task_id"]')
expect "spawn with an idempotency key" 0 --json spawn "$q" once --options '{"idempotency_key": "k1", "priority": 5}'
json "first spawn creates" 'd["created"] is True'
k1=$(field 'd["task_id"]')
expect "repeat spawn with the key" 0 --json spawn "$q" once --options '{"idempotency_key": "k1", "priority": 5}'
json "repeat spawn returns the same task, not created" "d['created'] is False and d['task_id'] == '$k1'"
expect "repeat spawn, table" 0 spawn "$q" once --options '{"idempotency_key": "k1", "priority": 5}'
has "repeat spawn says it exists" "^$k1 exists"
expect "spawn with run_at" 0 --json spawn "$q" later --options '{"run_at": "2999-01-01T00:00:00Z", "priority": -1}'
later=$(field 'd["task_id"]')
expect "spawn with a partial retry policy" 0 spawn "$q" flaky --options '{"retry": {"kind": "fixed", "base_seconds": 5}, "priority": 1}'
expect "spawn into an unknown queue" 1 spawn "no_such_queue_$$" t
has "unknown queue names the SQLSTATE" 'SQLSTATE BL003'
expect "spawn with an unknown option key" 1 spawn "$q" t --options '{"bogus": 1}'
has "bad option key names the SQLSTATE" 'SQLSTATE 22023'

# --- tasks in every state, by the SQL API -------------------------------------------------
# a: claimed (priority 10), a checkpoint and a child, then fails for good.
r=$(sql "SELECT run_id FROM belay.claim('$q', 'ctl-w1', 1, 300)")
sql "SELECT belay.set_checkpoint('$r', 'fetch', '{\"rows\": 42}')" >/dev/null
child=$(sql "SELECT belay.spawn_child('$r', 'fan', 'render', '{\"page\": 1}', '{\"queue\": \"$q2\"}')")
sql "SELECT belay.fail('$r', '{\"message\": \"boom\"}', NULL, true)" >/dev/null
# k1 (priority 5): claimed and left running.
sql "SELECT run_id FROM belay.claim('$q', 'ctl-w2', 1, 300)" >/dev/null
# w (in q2, priority 9): waits for an event.
w=$(sql "SELECT task_id FROM belay.spawn('$q2', 'approve', '{}', '{\"priority\": 9}')")
r=$(sql "SELECT run_id FROM belay.claim('$q2', 'ctl-w3', 1, 300)")
sql "SELECT suspended FROM belay.await_event('$r', 'approval', 'approved', 3600)" >/dev/null
# the child (q2): completes.
r=$(sql "SELECT run_id FROM belay.claim('$q2', 'ctl-w3', 1, 300)")
sql "SELECT belay.complete('$r', '{\"ok\": true}')" >/dev/null
# nap (q2): sleeps for an hour.
nap=$(sql "SELECT task_id FROM belay.spawn('$q2', 'nap')")
r=$(sql "SELECT run_id FROM belay.claim('$q2', 'ctl-w4', 1, 300)")
sql "SELECT belay.sleep('$r', 'nap', 3600::numeric)" >/dev/null

# --- queues -------------------------------------------------------------------------------
expect "queues" 0 queues
has "queues lists the test queue" "^$q +[0-9]"
has "queues has the state columns" 'QUEUE +PENDING +RUNNING +SLEEPING +WAITING +COMPLETED +FAILED +CANCELLED'
expect "queues --json" 0 --json queues
json "queues --json counts" "[x for x in d if x['queue'] == '$q'][0]['running'] == 1 and \
[x for x in d if x['queue'] == '$q'][0]['failed'] == 1 and \
[x for x in d if x['queue'] == '$q'][0]['pending'] == 3 and \
[x for x in d if x['queue'] == '$q2'][0]['waiting'] == 1 and \
[x for x in d if x['queue'] == '$q2'][0]['completed'] == 1 and \
[x for x in d if x['queue'] == '$q2'][0]['sleeping'] == 1"

# --- tasks --------------------------------------------------------------------------------
expect "tasks" 0 tasks --queue "$q"
has "tasks has its columns" '^ID +QUEUE +NAME +STATE +ATTEMPT +CREATED +FINISHED'
has "tasks shows a failed task" "^$a +$q +digest +failed +1/3 "
expect "tasks --json" 0 --json tasks --queue "$q"
json "tasks --json: 5 tasks, newest first" "len(d) == 5 and d[0]['task_name'] == 'flaky' and d[-1]['task_name'] == 'plain'"
expect "tasks --state pending covers delayed tasks" 0 --json tasks --queue "$q" --state pending
json "pending includes the run_at task" "'$later' in [t['task_id'] for t in d] and all(t['state'] == 'pending' for t in d)"
expect "tasks --state running" 0 --json tasks --queue "$q" --state running
json "one running task" "len(d) == 1 and d[0]['task_id'] == '$k1'"
expect "tasks --limit 2" 0 --json tasks --queue "$q" --limit 2
json "--limit 2 gives 2" 'len(d) == 2'
expect "tasks of all queues" 0 --json tasks --limit 1000
json "all queues include both test queues" "{'$q', '$q2'} <= {t['queue'] for t in d}"
expect "tasks --state sleeping" 0 --json tasks --queue "$q2" --state sleeping
json "one sleeping task" "[t['task_id'] for t in d] == ['$nap']"
expect "tasks --state sleeping, table" 0 tasks --queue "$q2" --state sleeping
has "the sleeping task in the table" "^$nap +$q2 +nap +sleeping +1/5 "
expect "tasks of an unknown queue" 3 tasks --queue "no_such_queue_$$"
expect "tasks, nothing matches" 0 tasks --queue "$q" --state sleeping
has "empty listing says so" '^no tasks$'

# --- task <id> ----------------------------------------------------------------------------
expect "task (failed, with runs, checkpoints, children)" 0 task "$a"
has "task shows its state" '^state +failed$'
has "task shows attempts" '^attempt +1 of 3$'
has "task shows its error" '"message":"boom"'
has "task shows its runs" '^runs \(1\)$'
has "task shows the failed run" ' 1 +ctl-w1 .* failed '
has "task shows its checkpoints" '^  fetch '
has "task shows its children" "^  $child +$q2 +render +completed "
expect "task --json" 0 --json task "$a"
json "task --json has every field of belay.task()" "all(k in d for k in ['task_id', 'queue', 'task_name', 'state', \
'attempt', 'max_attempts', 'params', 'result', 'error', 'parent_task_id', 'created_at', 'available_at', 'finished_at'])"
json "task --json has runs, checkpoints, children" "d['state'] == 'failed' and d['params'] == {'n': 2} and \
len(d['runs']) == 1 and d['runs'][0]['outcome'] == 'failed' and d['runs'][0]['worker'] == 'ctl-w1' and \
d['checkpoints'][0]['step'] == 'fetch' and d['checkpoints'][0]['value'] == {'rows': 42} and \
d['children'][0]['task_id'] == '$child' and d['live_run'] is None"
expect "task (running)" 0 task "$k1"
has "running task shows its live run" '^live run$'
has "live run has the worker" '^  worker +ctl-w2$'
has "live run has the lease" '^  lease_expires_at +.*\(in '
expect "task --json (running)" 0 --json task "$k1"
json "live run in JSON" "d['state'] == 'running' and d['live_run']['worker'] == 'ctl-w2' and d['live_run']['lease_expires_at']"
expect "task --json (child)" 0 --json task "$child"
json "child has its parent and result" "d['parent_task_id'] == '$a' and d['result'] == {'ok': True}"
expect "task (waiting)" 0 task "$w"
has "waiting task shows what it waits for" 'event "approved"'
expect "unknown task" 3 task "$missing"
has "unknown task message" "task $missing does not exist"
expect "unknown task, --json" 3 --json task "$missing"

# --- emit ---------------------------------------------------------------------------------
expect "emit wakes the waiting task" 0 emit "$q2" approved --payload '{"by": "ann"}'
has "emit says how many it woke" 'woke 1 task$'
expect "emit --json" 0 --json emit "$q2" approved
json "emit --json: nobody left to wake" "d['woken'] == 0 and d['event'] == 'approved'"
expect "emit without payload" 0 emit "$q" nobody-waits
expect "emit into an unknown queue" 1 emit "no_such_queue_$$" ev
has "emit unknown queue names the SQLSTATE" 'SQLSTATE BL003'

# --- cancel, retry ------------------------------------------------------------------------
expect "cancel a running task" 0 cancel "$k1"
has "cancel says what it did" "cancelled task $k1"
expect "cancel it again" 0 cancel "$k1"
has "a second cancel changes nothing" 'nothing to cancel'
expect "cancel --json" 0 --json cancel "$later"
json "cancel --json" "d['cancelled'] == 1 and d['state'] == 'cancelled' and d['previous_state'] == 'pending'"
expect "cancel an unknown task" 3 cancel "$missing"
expect "retry a failed task" 0 retry "$a"
has "retry says what happened" "task $a is pending again .*attempt 2 of 3"
expect "retry --json" 0 --json retry "$k1"
json "retry --json" "d['state'] == 'pending' and d['previous_state'] == 'cancelled' and d['attempt'] == 2"
expect "retry a pending task" 1 retry "$a"
has "retry refusal names the SQLSTATE" 'SQLSTATE 55000'
expect "retry an unknown task" 3 retry "$missing"

# --- stats --------------------------------------------------------------------------------
expect "stats" 0 stats
has "stats has its columns" 'QUEUE +COMPLETED/S +FAILED/S +LAG +PENDING'
has "stats lists the test queue" "^$q2 "
expect "stats --queue --window" 0 stats --queue "$q2" --window 60
expect "stats --json" 0 --json stats --queue "$q2"
json "stats --json: throughput, lag, counts" "d['queue'] == '$q2' and d['window_seconds'] == 300 and \
d['completed'] == 1 and d['completed_per_second'] > 0 and d['counts']['completed'] == 1 and \
d['lag_seconds'] >= 0 and len(d['queues']) == 1"
expect "stats --json, all queues" 0 --json stats --window 1h
json "stats --json: the test queues" "{'$q', '$q2'} <= {x['queue'] for x in d['queues']} and d['failed'] >= 1 and \
[x for x in d['queues'] if x['queue'] == '$q'][0]['lag_seconds'] > 0"
expect "stats of an unknown queue" 3 stats --queue "no_such_queue_$$"

# --- cleanup (last: it deletes tasks) -----------------------------------------------------
expect "cleanup, nothing old enough" 0 cleanup --queue "$q2"
has "cleanup says how many" '^deleted 0 finished tasks'
expect "cleanup --json" 0 --json cleanup --queue "$q2" --older-than 0
json "cleanup --json deleted the completed child" "d['deleted'] == 1 and d['queue'] == '$q2' and d['older_than_seconds'] == 0"
expect "cleanup table" 0 cleanup --queue "$q" --older-than 0s
has "cleanup table output" '^deleted 1 finished task '
expect "cleanup of an unknown queue" 1 cleanup --queue "no_such_queue_$$"
expect "task after cleanup" 3 task "$child"

echo "$passed passed, $failed failed"
((failed == 0))
