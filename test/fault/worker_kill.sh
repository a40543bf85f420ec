#!/usr/bin/env bash
# worker_kill: kill -9 the belay background worker and show that it comes back and
# catches up on everything that fell due while it was gone.
#
#   bash test/fault/worker_kill.sh CLUSTER_DIR
#
# A kill -9 of any backend makes the postmaster restart all of them (crash recovery);
# that is part of the test. Crash recovery of a small cluster takes well under a second,
# so to have work fall due while the worker is out of action the worker is first frozen
# (SIGSTOP: it holds no lock while it waits on its latch), set A is made and left to fall
# due (1.5 s), and only then is the frozen worker killed with kill -9. Set B is made as
# soon as the server accepts connections again (the new worker may not be up yet).
# Each set has
#   - 3 delayed tasks, due in 1 s;
#   - 2 tasks claimed with a 1 s lease and abandoned;
#   - 1 task sleeping for 1 s;
#   - 1 task awaiting an event that never comes, with a 1 s timeout.
# Nothing in this test calls claim() until the end, so only the worker can make them
# pending. Within 10 s of the worker's return: delayed and sleeping tasks are pending,
# the abandoned claims have a run with outcome 'lease_expired' and are retried (pending,
# attempt 2), the await is settled as timed out and pending. Then every task is claimed
# once and completed, replaying its sleep/await step.
. "$(dirname "$0")/lib.bash" "$@"

# Each kind of each set in its own queue: no claim of the setup may pick up (nor promote)
# a task that already fell due, however slow the box is.
KINDS=(leased sleeper awaiter delayed)
QUEUES=()
for tag in a b; do for kind in "${KINDS[@]}"; do QUEUES+=("fault_worker_kill_${tag}_$kind"); done; done
joined=$(IFS=,; echo "${QUEUES[*]}")
IN_QUEUES="('${joined//,/"', '"}')"
OPTS='{"max_attempts": 5, "retry": {"kind": "fixed", "base_seconds": 0}}'
CATCH_UP_BOUND=10

old_pid=$(wait_worker 20)
log "belay worker pid $old_pid"
for queue in "${QUEUES[@]}"; do fresh_queue "$queue"; done

# make_set TAG: one set of due-soon work (see above). Records the abandoned runs.
make_set() {
  local tag=$1 Q l1 l2 rows s a run got i
  Q=fault_worker_kill_${tag,,}_leased
  l1=$(spawn "$Q" leased "{\"set\": \"$tag\"}" "$OPTS")
  l2=$(spawn "$Q" leased "{\"set\": \"$tag\"}" "$OPTS")
  rows=$(q "SELECT run_id || ':' || task_id FROM belay.claim('$Q', 'ghost-$tag', 2, 1) ORDER BY task_id")
  [[ $(wc -l <<<"$rows") -eq 2 && $rows == *"$l1"* && $rows == *"$l2"* ]] ||
    die "set $tag: claim of the two leased tasks returned: $rows"
  cut -d: -f1 <<<"$rows" >>"$TMP/abandoned_runs"

  Q=fault_worker_kill_${tag,,}_sleeper
  s=$(spawn "$Q" sleeper "{\"set\": \"$tag\"}" "$OPTS")
  run=$(claim_one "$Q" "setup-$tag" 30 "$s")
  got=$(q "SELECT belay.sleep('$run', 'nap', 1.0)")
  [[ $got == t ]] || die "set $tag: sleep(1 s) returned '$got', expected t (suspended)"

  Q=fault_worker_kill_${tag,,}_awaiter
  a=$(spawn "$Q" awaiter "{\"set\": \"$tag\"}" "$OPTS")
  run=$(claim_one "$Q" "setup-$tag" 30 "$a")
  got=$(q "SELECT suspended, timed_out FROM belay.await_event('$run', 'w', 'never_emitted', 1.0)")
  [[ $got == "t|f" ]] || die "set $tag: await_event with a 1 s timeout returned '$got', expected t|f"

  Q=fault_worker_kill_${tag,,}_delayed
  for i in 1 2 3; do
    spawn "$Q" delayed "{\"set\": \"$tag\", \"i\": $i}" '{"delay_seconds": 1}' >/dev/null
  done
}

# ---- freeze the worker, make set A and let it fall due, then kill -9 the worker
FROZEN_PID=$old_pid
kill -STOP "$old_pid" || die "kill -STOP $old_pid failed"
# The signal is delivered asynchronously: give the kernel a moment to stop it.
for _ in $(seq 1 40); do
  frozen=$(awk '{print $3}' "/proc/$old_pid/stat")
  [[ $frozen == T ]] && break
  sleep 0.05
done
[[ $frozen == T ]] || { kill -CONT "$old_pid"; die "the worker did not stop (state '$frozen')"; }
make_set A
sleep 1.5
untouched=$(q "SELECT count(*) FROM belay.tasks WHERE queue LIKE 'fault\_worker\_kill\_a\_%' AND state IN ('scheduled', 'sleeping', 'waiting', 'running')")
[[ $untouched -eq 7 ]] || die "only $untouched of set A's 7 tasks are still untouched: something other than the (frozen) worker woke them"
log "set A made with the worker frozen; its 7 tasks fell due and are still untouched; kill -9 the worker (pid $old_pid)"
restarts_before=$(crash_restarts)
kill -9 "$old_pid" || die "kill -9 $old_pid failed"
FROZEN_PID=
t_kill=$(date +%s.%N)

# ---- the server restarts every backend; as soon as it takes connections, set B
wait_crash_restart "$restarts_before" 60
log "server accepts connections again $(fsub "$(date +%s.%N)" "$t_kill") s after the kill"
worker_at_b=$(worker_pid)
make_set B
log "set B made (due in ~1 s); worker at that moment: '${worker_at_b:-none}'"

new_pid=$(wait_worker 30 "$old_pid")
t_back=$(db_now)
[[ $new_pid != "$old_pid" ]] || die "the worker pid did not change"
ok "the belay worker came back with a new pid ($old_pid -> $new_pid)"

# ---- catch-up, without any claim
caught_up_sql() { # caught_up_sql N EXTRA-FILTER
  echo "SELECT count(*) = $1 AND bool_and(CASE t.task_name
    WHEN 'delayed' THEN t.state = 'pending'
    WHEN 'sleeper' THEN t.state = 'pending'
    WHEN 'awaiter' THEN t.state = 'pending' AND EXISTS (SELECT 1 FROM belay.checkpoints c
        WHERE c.task_id = t.task_id AND c.step = 'w' AND c.value @> '{\"timed_out\": true}')
      AND NOT EXISTS (SELECT 1 FROM belay.waits w WHERE w.task_id = t.task_id)
    WHEN 'leased' THEN t.state = 'pending' AND t.attempt = 2 AND t.run_id IS NULL
      AND (SELECT count(*) FROM belay.runs r WHERE r.task_id = t.task_id) = 1
      AND (SELECT count(*) FROM belay.runs r WHERE r.task_id = t.task_id AND r.outcome = 'lease_expired'
             AND r.error->>'kind' = 'lease_expired' AND r.worker = 'ghost-' || (t.params->>'set')) = 1
    END) FROM belay.tasks t WHERE t.queue IN $IN_QUEUES $2"
}
t_a_done=$(wait_until "$(caught_up_sql 7 "AND t.params->>'set' = 'A'")" "$CATCH_UP_BOUND")
[[ -n $t_a_done ]] && log "set A (overdue since the freeze) caught up $(fsub "$t_a_done" "$t_back") s after the worker's return"
t_done=$(wait_until "$(caught_up_sql 14 "")" "$CATCH_UP_BOUND")
if [[ -z $t_done ]]; then
  echo "tasks (no claim was made):" >&2
  q "SELECT t.task_name, t.params->>'set', t.state, t.attempt, to_char(t.available_at, 'HH24:MI:SS.MS'),
            coalesce((SELECT string_agg(r.outcome || '/' || r.worker, ',') FROM belay.runs r WHERE r.task_id = t.task_id), '-')
     FROM belay.tasks t WHERE t.queue IN $IN_QUEUES ORDER BY 1, 2" >&2
  die "the worker did not catch up within $CATCH_UP_BOUND s of its return (pid $new_pid)"
fi
ok "caught up $(fsub "$t_done" "$t_back") s after the worker's return: 6 delayed tasks pending, 4 expired leases reclaimed (lease_expired run, retried at attempt 2), 2 sleepers pending, 2 awaits timed out"

# ---- fencing survives the crash: the abandoned runs are dead
while read -r run; do
  state=$(sqlstate_of "SELECT belay.complete('$run', '{}')")
  [[ $state == BL001 ]] || die "complete() with abandoned run $run gave '$state', expected BL001"
done <"$TMP/abandoned_runs"
ok "the 4 abandoned runs are refused (BL001)"

# ---- finish: every task claimed exactly once, steps replayed, completed
claimed=$(q "SELECT c.run_id || '|' || c.task_id || '|' || c.task_name
             FROM unnest(ARRAY$(sed "s/^(/[/; s/)$/]/" <<<"$IN_QUEUES")) AS q(queue), belay.claim(q.queue, 'finisher', 100, 30) c")
n=$(grep -c . <<<"$claimed" || true)
[[ $n -eq 14 ]] || die "the finisher claimed $n tasks, expected 14: $claimed"
while IFS='|' read -r run task name; do
  case $name in
    sleeper)
      got=$(q "SELECT belay.sleep('$run', 'nap', 1.0)")
      [[ $got == f ]] || die "replayed sleep of $task returned '$got', expected f (wake time passed)" ;;
    awaiter)
      got=$(q "SELECT suspended, timed_out FROM belay.await_event('$run', 'w', 'never_emitted', 1.0)")
      [[ $got == "f|t" ]] || die "replayed await of $task returned '$got', expected f|t (timed out)" ;;
  esac
  q "SELECT belay.complete('$run', '{\"ok\": true}')" >/dev/null
done <<<"$claimed"
more=$(q "SELECT count(*) FROM unnest(ARRAY$(sed "s/^(/[/; s/)$/]/" <<<"$IN_QUEUES")) AS q(queue), belay.claim(q.queue, 'finisher', 100, 30) c")
[[ $more -eq 0 ]] || die "$more tasks were claimable after all 14 were completed"
got=$(q "SELECT count(*) FILTER (WHERE state = 'completed') || '/' || count(*) FROM belay.tasks WHERE queue IN $IN_QUEUES")
[[ $got == 14/14 ]] || die "completed/all tasks: $got, expected 14/14"
got=$(q "SELECT count(*) FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE t.queue IN $IN_QUEUES AND r.outcome = 'completed'")
[[ $got == 14 ]] || die "$got completed runs, expected 14"
ok "all 14 tasks claimed once, replayed (sleep -> false, await -> timed out) and completed"

q "SELECT belay.drop_queue(queue) FROM belay.list_queues() WHERE queue IN $IN_QUEUES" >/dev/null
finish
