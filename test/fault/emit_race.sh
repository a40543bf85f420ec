#!/usr/bin/env bash
# emit_race: builds and runs build/emit_race (test/fault/emit_race.cpp): 8 sessions racing
# await_event against emit_event (no lost wake-up), then cancel against complete, fail,
# emit, spawn_child and join (no deadlock, consistent end states). See emit_race.cpp.
#
#   bash test/fault/emit_race.sh CLUSTER_DIR [emit_race options, e.g. --seed N]
#
# Its queues (fault_emit_race, fault_cancel_race) are dropped when it passes and kept for
# a post-mortem when it fails.
. "$(dirname "$0")/lib.bash" "$@"

# The sessions' expected BL001/BL002 errors fill the server log; on failure show the rest.
LOG_GREP='deadlock|Process [0-9]+ |PANIC|FATAL|TRAP|terminated by signal|duplicate key'
bash "$FAULT_DIR/build.sh" emit_race || die "test/fault/build.sh emit_race failed"
wait_worker 20 >/dev/null
status=0
timeout 150 "$ROOT/build/emit_race" "${@:2}" || status=$?
if ((status != 0)); then
  ((status == 124)) && die "emit_race did not finish within 150 s"
  die "emit_race failed (exit $status); its queues fault_emit_race and fault_cancel_race are kept"
fi
q "SELECT belay.drop_queue(queue) FROM belay.list_queues() WHERE queue IN ('fault_emit_race', 'fault_cancel_race')" >/dev/null
# (no summary line of our own: emit_race's "N passed, M failed" stays the last line)
