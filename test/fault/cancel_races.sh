#!/usr/bin/env bash
# cancel_races: cancel() that has to wait for another session's row lock, in fixed
# interleavings (the deterministic forms of races emit_race.cpp finds at random).
#
#   bash test/fault/cancel_races.sh CLUSTER_DIR
#
# Cases 1-3, a cancel that waits for a run which is suspending the task:
#   session H: BEGIN; await_event(...) or join(...)  -- suspends the task, holds its row
#   session C: cancel(task)                           -- blocks on the task's row lock
#   session H: COMMIT                                 -- C goes on and cancels the task
# The task must end cancelled with no wait left behind (a wait belongs to a waiting task).
# What a leftover wait breaks:
#   - retry() of the cancelled task, then await_event/join: the new wait cannot be stored;
#   - a leftover wait with a deadline: once the deadline has passed, belay.tick() reports
#     it as due for ever (next_due_at in the past) and the background worker ticks in a
#     busy loop.
# 1. await_event without timeout (then retry + await again); 2. join on a child;
# 3. await_event with a 2 s timeout (then the worker must stay idle after the deadline).
#
# Case 4, a cancel that waits while the task is claimed:
#   session H: BEGIN; set_checkpoint on the parent's run  -- holds the parent's row (share)
#   session C: cancel(parent)                             -- blocks on the parent's row
#   session W: claim(child); commit                       -- the child starts running
#   session H: COMMIT                                     -- C cancels parent and child
# The child's cancelled run must not end before it started (runs.ended_at >= started_at),
# nor the child finish before its run started.
. "$(dirname "$0")/lib.bash" "$@"

Q=fault_cancel_races
OPTS='{"max_attempts": 1}'
CLEANUP_SQL+=("SELECT belay.drop_queue(queue) FROM belay.list_queues() WHERE queue = '$Q'")
failures=()
soft() { # soft DESCRIPTION OK(true/false) DETAIL: records a failure, goes on
  if [[ $2 == true ]]; then ok "$1${3:+ ($3)}"; else echo "FAILED $1${3:+ ($3)}"; failures+=("$1${3:+ ($3)}"); fi
}

wait_worker 20 >/dev/null
fresh_queue "$Q"
session_start holder
session_start canceller
canceller_pid=$(session_pid canceller)

# race TASK SUSPENDING-SQL: H suspends the task in an open transaction, C cancels it.
race() {
  local task=$1 sql=$2
  session_run holder "BEGIN;"
  session_run holder "$sql"
  session_send canceller "SELECT belay.cancel('$task');"
  wait_lock_wait "$canceller_pid"
  session_run holder "COMMIT;"
  session_run canceller ""
}

waits_of() { q "SELECT count(*) || coalesce(' (step ' || min(step) || ', deadline ' || coalesce(min(deadline)::text, 'none') || ')', '') FROM belay.waits WHERE task_id = '$1'"; }

# ---- 1. await_event without timeout
t1=$(spawn "$Q" job '{"case": 1}' "$OPTS")
r1=$(claim_one "$Q" w 30 "$t1")
race "$t1" "SELECT suspended FROM belay.await_event('$r1', 'w', 'ev1');"
got=$(q "SELECT state FROM belay.tasks WHERE task_id = '$t1'")
[[ $got == cancelled ]] || die "case 1: the task is '$got', not cancelled"
w=$(waits_of "$t1")
soft "1. cancel racing a suspending await_event leaves no wait behind" "$([[ $w == 0* ]] && echo true || echo false)" "waits of the cancelled task: $w"
q "SELECT belay.retry('$t1')" >/dev/null
r1b=$(claim_one "$Q" w 30 "$t1")
out=$( (q_try "SELECT suspended FROM belay.await_event('$r1b', 'w_again', 'ev1b')" || true) | head -n 2 | tr '\n' ' ')
soft "1. after retry(), the task can await an event again" "$([[ $out == "t " ]] && echo true || echo false)" "await_event: $out"
q "SELECT belay.cancel('$t1')" >/dev/null

# ---- 2. join on a child
t2=$(spawn "$Q" parent '{"case": 2}' "$OPTS")
r2=$(claim_one "$Q" w 30 "$t2")
child=$(q "SELECT belay.spawn_child('$r2', 'kid', 'child', '{}', '$OPTS')")
race "$t2" "SELECT suspended FROM belay.join('$r2', 'join', '$child');"
got=$(q "SELECT string_agg(state, ' ' ORDER BY task_id) FROM belay.tasks WHERE task_id IN ('$t2', '$child')")
[[ $got == "cancelled cancelled" ]] || die "case 2: parent and child are '$got', expected both cancelled"
w=$(waits_of "$t2")
soft "2. cancel racing a suspending join leaves no wait behind" "$([[ $w == 0* ]] && echo true || echo false)" "waits of the cancelled parent: $w"

# ---- 3. await_event with a 2 s timeout
t3=$(spawn "$Q" job '{"case": 3}' "$OPTS")
r3=$(claim_one "$Q" w 30 "$t3")
race "$t3" "SELECT suspended FROM belay.await_event('$r3', 'w', 'ev3', 2.0);"
got=$(q "SELECT state FROM belay.tasks WHERE task_id = '$t3'")
[[ $got == cancelled ]] || die "case 3: the task is '$got', not cancelled"
w=$(waits_of "$t3")
soft "3. cancel racing a suspending await_event with a timeout leaves no wait behind" "$([[ $w == 0* ]] && echo true || echo false)" "waits of the cancelled task: $w"
deadline=$(q "SELECT extract(epoch FROM max(deadline)) FROM belay.waits WHERE task_id = '$t3'")
if [[ -n $deadline ]]; then
  # Let the leftover deadline pass, then look at the worker.
  while fcmp "$(db_now)" "<" "$(fadd "$deadline" 0.3)"; do sleep 0.1; done
  next=$(q "SELECT coalesce(to_char(next_due_at, 'HH24:MI:SS.MS'), 'none') || '|' || coalesce((next_due_at > clock_timestamp())::text, 'true') FROM belay.tick()")
  soft "3. after the deadline, belay.tick() reports no due time in the past" "${next#*|}" "next_due_at ${next%%|*}, now $(q "SELECT to_char(clock_timestamp(), 'HH24:MI:SS.MS')")"
  sleep 1.1 # pg_stat_database is flushed at most once a second
  c1=$(q "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
  sleep 2
  c2=$(q "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
  soft "3. the background worker stays idle (no busy loop) after the leftover deadline" \
    "$( (($((c2 - c1)) < 60)) && echo true || echo false)" "$((c2 - c1)) commits in the database in 2 s (this test made ~2)"
fi

# ---- 4. a claim that commits while cancel() waits
t4=$(spawn "$Q" parent '{"case": 4}' "$OPTS")
r4=$(claim_one "$Q" w 30 "$t4")
child4=$(q "SELECT belay.spawn_child('$r4', 'kid', 'child', '{}', '$OPTS')")
session_run holder "BEGIN;"
session_run holder "SELECT belay.set_checkpoint('$r4', 'held', '{}');"
session_send canceller "SELECT belay.cancel('$t4');"
wait_lock_wait "$canceller_pid"
run_child=$(claim_one "$Q" w 30 "$child4")
session_run holder "COMMIT;"
session_run canceller ""
got=$(q "SELECT string_agg(state, ' ' ORDER BY task_id) FROM belay.tasks WHERE task_id IN ('$t4', '$child4')")
[[ $got == "cancelled cancelled" ]] || die "case 4: parent and child are '$got', expected both cancelled"
row=$(q "SELECT r.outcome, (r.ended_at >= r.started_at)::text, (t.finished_at >= r.started_at)::text,
                to_char(r.started_at, 'HH24:MI:SS.US'), to_char(r.ended_at, 'HH24:MI:SS.US'), to_char(t.finished_at, 'HH24:MI:SS.US')
         FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE r.run_id = '$run_child'")
IFS='|' read -r outcome ends_after finishes_after started ended finished <<<"$row"
[[ $outcome == cancelled ]] || die "case 4: the child's run ended as '$outcome', expected cancelled"
soft "4. a run cancelled by a cancel() that waited does not end before it started" "$ends_after" \
  "run started $started, ended $ended"
soft "4. ... nor does its task finish before the run started" "$finishes_after" "task finished $finished"

session_end holder
session_end canceller
q "SELECT belay.drop_queue('$Q')" >/dev/null
((${#failures[@]} == 0)) || die "${#failures[@]} checks failed:
$(printf '  - %s\n' "${failures[@]}")"
finish
