#!/usr/bin/env bash
# kill_backend: a worker session dies (kill -9 of its backend) inside a transaction that
# records a checkpoint; its uncommitted work is gone, its committed claim is reclaimed by
# the background worker when the lease expires, and a second worker finishes the task
# exactly once.
#
#   bash test/fault/kill_backend.sh CLUSTER_DIR
#
# The victim session claims the task (committed, 4 s lease), records checkpoint
# 'committed_step' (committed), then BEGIN; set_checkpoint('uncommitted_step'); and sits
# in that transaction. Its backend (pg_backend_pid()) is killed with kill -9, which makes
# the postmaster restart every backend. Checks: after recovery 'uncommitted_step' is absent
# and 'committed_step' present; the claim survived (the task is still running under the
# victim's run until the lease ends); nobody calls anything on the task, yet the worker
# reclaims it within 1 s of the lease's expiry (run outcome 'lease_expired'); the old run
# is fenced off (BL001); a second worker claims attempt 2, sees only the committed
# checkpoint, and completes it; belay.runs has exactly one 'completed' run.
. "$(dirname "$0")/lib.bash" "$@"

Q=fault_kill_backend
OPTS='{"max_attempts": 3, "retry": {"kind": "fixed", "base_seconds": 0}}'
LEASE=4
RECLAIM_BOUND=1.0   # seconds after expiry (DESIGN.md: "within 1 s of expiry")

wait_worker 20 >/dev/null
fresh_queue "$Q"

task=$(spawn "$Q" job '{"n": 1}' "$OPTS")
run=$(claim_one "$Q" victim "$LEASE" "$task")
q "SELECT belay.set_checkpoint('$run', 'committed_step', '{\"v\": 1}')" >/dev/null
lease_exp=$(q "SELECT extract(epoch FROM lease_expires_at) FROM belay.tasks WHERE task_id = '$task'")

# ---- the victim: inside a transaction, after set_checkpoint
psql -X -q -A -t -v ON_ERROR_STOP=1 >"$TMP/victim.out" 2>&1 <<SQL &
\o $TMP/victim.pid
SELECT pg_backend_pid();
\o
BEGIN;
SELECT belay.set_checkpoint('$run', 'uncommitted_step', '{"v": 2}');
\! touch $TMP/victim.in_tx
SELECT pg_sleep(30);
COMMIT;
SQL
victim_client=$!
BG_PIDS+=("$victim_client")
for _ in $(seq 100); do [[ -f $TMP/victim.in_tx ]] && break; sleep 0.05; done
[[ -f $TMP/victim.in_tx ]] || die "the victim session did not get into its transaction: $(cat "$TMP/victim.out")"
victim=$(cat "$TMP/victim.pid")
BG_BACKENDS+=("$victim")
got=$(q "SELECT (state = 'active' AND xact_start IS NOT NULL AND backend_xid IS NOT NULL)::text
         FROM pg_stat_activity WHERE pid = $victim")
[[ $got == true ]] || die "backend $victim is not inside a writing transaction (pg_stat_activity: '$got')"
got=$(q "SELECT count(*) FROM belay.checkpoints WHERE task_id = '$task' AND step = 'uncommitted_step'")
[[ $got == 0 ]] || die "the uncommitted checkpoint is visible to other sessions before the kill"
ok "victim backend $victim holds an open transaction with set_checkpoint('uncommitted_step')"

restarts_before=$(crash_restarts)
kill -9 "$victim" || die "kill -9 $victim failed"
BG_BACKENDS=()
t_kill=$(date +%s.%N)
wait "$victim_client" && die "the victim's psql exited 0 although its backend was killed"
wait_crash_restart "$restarts_before" 60
back=$(date +%s.%N)
log "server accepts connections $(fsub "$back" "$t_kill") s after the kill (crash recovery of all backends)"
wait_worker 30 >/dev/null
t_worker=$(db_now)
grep -q "was terminated by signal 9" <(tail -c +$((LOG_START + 1)) "$CLUSTER_DIR/server.log") ||
  die "the server log does not show the killed backend"

# ---- after recovery: the transaction's work is gone, the committed work is there
got=$(q "SELECT coalesce(string_agg(step || '=' || value::text, ' ' ORDER BY step), '') FROM belay.checkpoints WHERE task_id = '$task'")
[[ $got == 'committed_step={"v": 1}' ]] || die "checkpoints after the crash: '$got', expected only committed_step={\"v\": 1}"
ok "after recovery: 'uncommitted_step' absent, 'committed_step' present"

now=$(db_now)
if fcmp "$now" "<" "$(fsub "$lease_exp" 0.3)"; then
  got=$(q "SELECT state || ' ' || (run_id = '$run') FROM belay.tasks WHERE task_id = '$task'")
  [[ $got == "running true" ]] || die "before its lease expired the task is '$got', expected 'running true' (the committed claim)"
  ok "the committed claim survived: still running under the victim's run, $(fsub "$lease_exp" "$now") s of lease left"
  strict=yes
else
  log "NOTE: recovery outlasted the lease; the reclaim bound is checked against the worker's return"
  strict=no
fi

# ---- the worker reclaims the expired lease: no client calls anything on the task
seen=$(wait_until "SELECT EXISTS (SELECT 1 FROM belay.runs WHERE run_id = '$run')" "$(awk -v e="$lease_exp" -v n="$(db_now)" 'BEGIN { printf "%.1f", e - n + 10 }')")
[[ -n $seen ]] || die "run $run was not ended within 10 s of its lease's expiry; task: $(q "SELECT state, lease_expires_at FROM belay.tasks WHERE task_id = '$task'")"
row=$(q "SELECT r.outcome, r.worker, r.attempt, r.error->>'kind',
                extract(epoch FROM r.ended_at - (r.error->>'lease_expired_at')::timestamptz),
                extract(epoch FROM r.ended_at),
                extract(epoch FROM (r.error->>'lease_expired_at')::timestamptz) = $lease_exp
         FROM belay.runs r WHERE r.run_id = '$run'")
IFS='|' read -r outcome worker attempt kind delay ended same_expiry <<<"$row"
[[ $outcome == lease_expired && $worker == victim && $attempt == 1 && $kind == lease_expired && $same_expiry == t ]] ||
  die "the victim's run ended as: $row (expected lease_expired|victim|1|lease_expired|...|t)"
fcmp "$delay" ">=" 0 || die "the lease was reclaimed $delay s BEFORE it expired"
if [[ $strict == yes ]]; then
  fcmp "$delay" "<=" "$RECLAIM_BOUND" || die "the lease was reclaimed $delay s after its expiry; the bound is $RECLAIM_BOUND s"
  ok "the worker reclaimed the expired lease $delay s after expiry (bound $RECLAIM_BOUND s), outcome lease_expired"
else
  # The lease ran out while the server was still recovering: the bound counts from the
  # moment we saw the worker back.
  late=$(fsub "$ended" "$t_worker")
  fcmp "$late" "<=" "$RECLAIM_BOUND" || die "the lease (expired during recovery) was reclaimed $late s after the worker was back; the bound is $RECLAIM_BOUND s"
  ok "the worker reclaimed the lease (expired during recovery) $delay s after expiry, $late s after its return (bound $RECLAIM_BOUND s)"
fi

got=$(q "SELECT state || ' ' || attempt FROM belay.tasks WHERE task_id = '$task'")
[[ $got == "pending 2" ]] || die "after the reclaim the task is '$got', expected 'pending 2' (retried at once)"
for call in "belay.set_checkpoint('$run', 'late', '{}')" "belay.complete('$run', '{}')" "belay.heartbeat('$run')"; do
  state=$(sqlstate_of "SELECT $call")
  [[ $state == BL001 ]] || die "the killed worker's run: $call gave '$state', expected BL001"
done
ok "the killed worker's run is fenced off (BL001)"

# ---- a second worker finishes it
row=$(q "SELECT run_id || '|' || task_id || '|' || attempt || '|' || checkpoints::text FROM belay.claim('$Q', 'finisher', 10, 30)")
IFS='|' read -r run2 task2 attempt2 steps2 <<<"$row"
[[ $task2 == "$task" && $attempt2 == 2 && $steps2 == '{"committed_step": {"v": 1}}' ]] ||
  die "the second worker's claim returned '$row'; expected task $task, attempt 2, checkpoints {\"committed_step\": {\"v\": 1}}"
q "SELECT belay.set_checkpoint('$run2', 'uncommitted_step', '{\"v\": 3}')" >/dev/null
q "SELECT belay.complete('$run2', '{\"done\": true}')" >/dev/null
ok "the second worker claimed attempt 2 with only the committed checkpoint and completed it"

got=$(q "SELECT count(*) FROM belay.claim('$Q', 'finisher', 10, 30)")
[[ $got == 0 ]] || die "$got tasks claimable after the completion"
got=$(q "SELECT string_agg(outcome || '/' || worker || '/' || attempt, ' ' ORDER BY started_at) FROM belay.runs WHERE task_id = '$task'")
[[ $got == "lease_expired/victim/1 completed/finisher/2" ]] || die "runs of the task: '$got', expected 'lease_expired/victim/1 completed/finisher/2'"
got=$(q "SELECT state || ' ' || result::text FROM belay.tasks WHERE task_id = '$task'")
[[ $got == 'completed {"done": true}' ]] || die "the task ended as '$got'"
ok "completed exactly once: runs are $(q "SELECT string_agg(outcome || '/' || worker, ' ' ORDER BY started_at) FROM belay.runs WHERE task_id = '$task'")"

q "SELECT belay.drop_queue('$Q')" >/dev/null
finish
