#!/usr/bin/env bash
# vacuum: the belay vacuum worker vacuums belay's tables under churn, well before
# autovacuum's one-minute naptime would; it survives a kill -9 and can be turned off.
#
#   bash test/fault/vacuum.sh CLUSTER_DIR
#
#   1. its process runs ('belay vacuum' in pg_stat_activity);
#   2. 20,000 tasks spawned, claimed, completed and cleaned up leave dead tuples in
#      belay.tasks; within 10 s a (non-auto) vacuum of belay.tasks has run and the dead
#      tuples are gone from the statistics;
#      A table another session has locked is skipped with a warning that names it, and
#      the worker goes on;
#   3. with belay.vacuum_interval_ms = 0 the same churn is left alone for 4 s;
#   4. kill -9 of the vacuum worker: the server restarts its processes, the worker comes
#      back and vacuums again; nothing committed is lost;
#   5. bad settings are refused with the setting named.
. "$(dirname "$0")/lib.bash" "$@"

Q=fault_vacuum
# wait_until polls in one transaction: read the statistics afresh on every poll.
export PGOPTIONS="$PGOPTIONS -c stats_fetch_consistency=none"
TASKS=20000
fresh_queue "$Q"
fresh_queue "${Q}_keep"
CLEANUP_SQL+=("ALTER SYSTEM RESET belay.vacuum_interval_ms" "SELECT pg_reload_conf()")

vacuum_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'belay vacuum'"; }
vacuums() { q "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass"; }
dead() { q "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass"; }
# churn: TASKS tasks through spawn, claim, complete and cleanup (3 dead tuples each).
churn() {
  q "SELECT count(*) FROM belay.spawn_many('$Q', 'job', (SELECT jsonb_agg(jsonb_build_object('i', i)) FROM generate_series(1, $TASKS) i))" >/dev/null
  for _ in $(seq $((TASKS / 1000))); do
    q "SELECT count(*) FROM belay.complete_many((SELECT array_agg(run_id) FROM belay.claim('$Q', 'w', 1000, 60)))" >/dev/null
  done
  q "SELECT belay.cleanup('$Q', interval '0')" >/dev/null
  [[ $(q "SELECT count(*) FROM belay.tasks WHERE queue = '$Q'") == 0 ]] || die "churn: tasks of $Q are left"
}

# ---- 1. the process
for _ in $(seq 100); do [[ -n $(vacuum_pid) ]] && break; sleep 0.1; done
pid=$(vacuum_pid)
[[ -n $pid ]] || die "no 'belay vacuum' process in pg_stat_activity"
ok "the vacuum worker runs (pid $pid)"

# ---- 2. it vacuums belay.tasks after churn
before=$(vacuums)
churn
log "after the churn: $(dead) dead tuples in belay.tasks, vacuum_count $before"
seen=$(wait_until "SELECT vacuum_count > $before AND n_dead_tup < $TASKS FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass" 10)
[[ -n $seen ]] || die "no vacuum of belay.tasks within 10 s (vacuum_count $(vacuums), dead tuples $(dead))"
ok "belay.tasks was vacuumed within 10 s of the churn (vacuum_count $before -> $(vacuums), dead tuples now $(dead))"

# ---- 2b. a table it cannot lock is skipped, named right, and the worker goes on
session_start locker
session_run locker "BEGIN; LOCK TABLE belay.tasks IN SHARE UPDATE EXCLUSIVE MODE;"
before=$(vacuums)
churn
log_mark=$(stat -c %s "$CLUSTER_DIR/server.log")
sleep 3
skipped=$(tail -c +$((log_mark + 1)) "$CLUSTER_DIR/server.log" | grep -c 'skipping vacuum of "tasks" --- lock not available' || true)
((skipped > 0)) || die "no 'skipping vacuum of \"tasks\"' warning while belay.tasks was locked"
[[ $(vacuums) == "$before" ]] || die "belay.tasks was vacuumed while another session held its lock"
[[ $(vacuum_pid) == "$pid" ]] || die "the vacuum worker did not survive a table it could not lock (pid $pid -> $(vacuum_pid))"
ok "while belay.tasks is locked it is skipped ($skipped warnings naming it) and the worker goes on (pid $pid)"
session_run locker "COMMIT;"
session_end locker
seen=$(wait_until "SELECT vacuum_count > $before FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass" 10)
[[ -n $seen ]] || die "once the lock was released, no vacuum of belay.tasks within 10 s"
ok "once the lock is released it vacuums belay.tasks"

# ---- 3. turned off
q "ALTER SYSTEM SET belay.vacuum_interval_ms = 0" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
before=$(vacuums)
churn
sleep 4
[[ $(vacuums) == "$before" ]] || die "belay.vacuum_interval_ms = 0, yet belay.tasks was vacuumed ($before -> $(vacuums))"
ok "with belay.vacuum_interval_ms = 0 the churn is left to autovacuum (vacuum_count stays $before, $(dead) dead tuples)"
q "ALTER SYSTEM RESET belay.vacuum_interval_ms" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
seen=$(wait_until "SELECT vacuum_count > $before FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass" 10)
[[ -n $seen ]] || die "turned back on, the worker did not vacuum belay.tasks within 10 s"
ok "turned back on, it vacuums the churn left behind"

# ---- 4. kill -9: the postmaster restarts every process; the worker comes back
keep=$(spawn "${Q}_keep" keep)
kill -9 "$pid"
for _ in $(seq 300); do
  new=$(psql -X -q -A -t -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'belay vacuum'" 2>/dev/null || true)
  [[ -n $new && $new != "$pid" ]] && break
  sleep 0.1
done
[[ -n $new && $new != "$pid" ]] || die "the vacuum worker did not come back within 30 s of kill -9"
ok "after kill -9 the vacuum worker came back (pid $pid -> $new)"
[[ $(q "SELECT state FROM belay.task('$keep')") == pending ]] || die "a task spawned before the kill is lost"
ok "the task spawned before the kill is still pending"
before=$(vacuums)
churn
seen=$(wait_until "SELECT vacuum_count > $before FROM pg_stat_user_tables WHERE relid = 'belay.tasks'::regclass" 10)
[[ -n $seen ]] || die "after the restart no vacuum of belay.tasks within 10 s"
ok "and vacuums again after churn"

# ---- 5. bad settings
for bad in "belay.vacuum_interval_ms = -1" "belay.vacuum_threshold = -5"; do
  out=$(q_try "ALTER SYSTEM SET $bad" || true)
  grep -q "${bad%% *}" <<<"$out" || die "ALTER SYSTEM SET $bad: expected an error naming the setting, got: $out"
done
ok "negative settings are refused, naming the setting"

finish
