#!/usr/bin/env bash
# drop_queue_race: drop_queue() against spawns in flight leaves no task behind.
#
#   bash test/fault/drop_queue_race.sh CLUSTER_DIR
#
# belay.tasks has no foreign key to belay.queues (its per-row check was a lock per task);
# spawn() and spawn_many() lock the queue row once (FOR KEY SHARE) and drop_queue()
# deletes the queue row, then its tasks. Fixed interleavings with two sessions:
#   1. spawn() uncommitted, then drop_queue(): the drop waits for the spawn; after both
#      commit the queue and the spawned task are gone;
#   2. the same with spawn_many() of 3;
#   3. drop_queue() uncommitted, then spawn(): the spawn waits, then fails with BL003;
#      no task of the queue exists;
#   4. a dropped queue's tasks take their runs, checkpoints and waits with them;
#   5. a REPEATABLE READ drop_queue() whose snapshot predates a spawn it waited for fails
#      with 40001 (as the foreign-key cascade did) instead of leaving that task behind.
. "$(dirname "$0")/lib.bash" "$@"

Q=fault_drop_race
left() { q "SELECT count(*) FROM belay.tasks WHERE queue = '$Q'"; }

# ---- 1. spawn in flight, then drop
fresh_queue "$Q"
session_start spawner
session_start dropper
session_run spawner "BEGIN; SELECT task_id FROM belay.spawn('$Q', 'late');"
session_send dropper "SELECT belay.drop_queue('$Q');"
wait_lock_wait "$(session_pid dropper)"
ok "1. drop_queue() waits for a spawn() in flight"
session_run spawner "COMMIT;"
session_run dropper "SELECT 'dropped';"
[[ $(q "SELECT count(*) FROM belay.queues WHERE queue = '$Q'") == 0 ]] || die "1. the queue is still there"
[[ $(left) == 0 ]] || die "1. $(left) task(s) of the dropped queue are left"
ok "1. after both commit, the queue and the task spawned into it are gone"

# ---- 2. spawn_many in flight, then drop
fresh_queue "$Q"
session_run spawner "BEGIN; SELECT count(*) FROM belay.spawn_many('$Q', 'late', '[{}, {}, {}]');"
session_send dropper "SELECT belay.drop_queue('$Q');"
wait_lock_wait "$(session_pid dropper)"
session_run spawner "COMMIT;"
session_run dropper "SELECT 'dropped';"
[[ $(left) == 0 ]] || die "2. $(left) task(s) of the dropped queue are left"
ok "2. the same with spawn_many(): drop_queue() waited, no task is left"

# ---- 3. drop in flight, then spawn
fresh_queue "$Q"
session_end spawner
session_start spawner2
session_run dropper "BEGIN; SELECT belay.drop_queue('$Q');"
session_send spawner2 "\\set ON_ERROR_STOP 0
\\set VERBOSITY verbose
SELECT task_id FROM belay.spawn('$Q', 'too-late');"
wait_lock_wait "$(session_pid spawner2)"
ok "3. spawn() waits for a drop_queue() in flight"
session_run dropper "COMMIT;"
session_run spawner2 "SELECT 'after';"
grep -q 'BL003' "$TMP/spawner2.out" || die "3. the waiting spawn did not fail with BL003: $(cat "$TMP/spawner2.out")"
[[ $(left) == 0 ]] || die "3. $(left) task(s) of the dropped queue exist"
ok "3. after the drop commits, the spawn fails with BL003 and leaves no task"

# ---- 4. what a dropped queue's tasks own goes with them
fresh_queue "$Q"
task=$(spawn "$Q" owner)
run=$(claim_one "$Q" w 60 "$task")
q "SELECT belay.set_checkpoint('$run', 'step', '1')" >/dev/null
q "SELECT belay.fail('$run', '{}', clock_timestamp())" >/dev/null
[[ -n $(wait_until "SELECT state = 'pending' FROM belay.tasks WHERE task_id = '$task'" 5) ]] ||
  die "4. setup: the failed task is not pending again within 5 s"
run=$(claim_one "$Q" w 60 "$task")
q "SELECT belay.await_event('$run', 'wait', 'never')" >/dev/null
[[ $(q "SELECT (SELECT count(*) FROM belay.run_history WHERE task_id = '$task')
             + (SELECT count(*) FROM belay.checkpoints WHERE task_id = '$task')
             + (SELECT count(*) FROM belay.waits WHERE task_id = '$task')") -ge 3 ]] ||
  die "4. setup: the task should own runs, a checkpoint and a wait"
q "SELECT belay.drop_queue('$Q')" >/dev/null
[[ $(q "SELECT (SELECT count(*) FROM belay.run_history WHERE task_id = '$task')
             + (SELECT count(*) FROM belay.checkpoints WHERE task_id = '$task')
             + (SELECT count(*) FROM belay.waits WHERE task_id = '$task')
             + (SELECT count(*) FROM belay.tasks WHERE task_id = '$task')") == 0 ]] ||
  die "4. rows of the dropped queue's task are left"
ok "4. drop_queue() removes its tasks with their runs, checkpoints and waits"

# ---- 5. REPEATABLE READ: the spawn commits after the drop's snapshot was taken
fresh_queue "$Q"
session_run dropper "\\set ON_ERROR_STOP 0
\\set VERBOSITY verbose
BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM belay.tasks;"
session_run spawner2 "BEGIN; SELECT task_id FROM belay.spawn('$Q', 'late-rr');"
session_send dropper "SELECT belay.drop_queue('$Q');"
wait_lock_wait "$(session_pid dropper)"
session_run spawner2 "COMMIT;"
session_run dropper "ROLLBACK;"
grep -q '40001' "$TMP/dropper.out" || die "5. the REPEATABLE READ drop did not fail with 40001: $(tail -n 5 "$TMP/dropper.out")"
[[ $(q "SELECT count(*) FROM belay.queues WHERE queue = '$Q'") == 1 && $(left) == 1 ]] ||
  die "5. after the failed drop the queue and its task should both be there"
ok "5. a REPEATABLE READ drop that would miss a task spawned meanwhile fails with 40001, changing nothing"

session_end dropper
session_end spawner2
finish
