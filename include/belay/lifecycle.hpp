// What happens to a task when a run ends: failing it by its retry policy, suspending it,
// waking the parents that join it, cancelling trees. Shared by the SQL functions and the
// background worker's tick. All need SPI connected.
//
// Lock order, everywhere in belay (it is what keeps cancel, complete, fail, emit and the
// tick from deadlocking):
//   1. event advisory locks (LockEvent), before any row;
//   2. task rows in task_id order. A child is created by its parent's run, so its v7
//      task_id is always greater: task_id order is ancestors first. A call that may end
//      a child task (complete, fail, cancel) therefore locks the parent before the child.
// The tick never waits on a row it does not lock first in that order: it takes the
// others with SKIP LOCKED and leaves them to the next tick.
#pragma once

#include "belay/guard.hpp"

#include <optional>
#include <string>

namespace belay {

// A live run and its task, locked FOR UPDATE.
struct LockedRun {
	Datum task_id;
	Datum run_id;
	int attempt;
	int max_attempts;
	std::optional<std::string> retry_policy; // JSON text; none: the default policy
	std::string queue;
	std::string worker;
	Datum run_started_at;
	Datum parent_task_id; // 0: none
	bool watched;         // someone waits for NOTIFY belay_finished
};

// Locks the task of a live run (BL001/BL002 via ThrowNotLive if it is not live). With
// lock_parent, the parent task is locked first: needed when the call may end the task.
LockedRun LockLiveRun(Datum run_id, TimestampTz now, bool lock_parent);

// The row the lease reclaimer found (locked with SKIP LOCKED); false if it is gone or
// held by someone else.
bool LockExpiredRun(Datum task_id, TimestampTz now, LockedRun *run);

// Fails the run: retries by the task's policy (or at retry_at) unless final or out of
// attempts. outcome goes to belay.run_history ('failed' or 'lease_expired'). Returns the public
// state: 'pending' or 'failed'. Wakes joining parents when the task fails for good.
std::string FailRun(const LockedRun &run, Datum error, std::optional<TimestampTz> retry_at, bool final,
                    const char *outcome, TimestampTz now);

// Ends the run without ending the attempt: the task becomes `state` ('sleeping' until
// available_at, or 'waiting').
void SuspendRun(const LockedRun &run, const char *state, std::optional<TimestampTz> available_at, TimestampTz now);

// The task of `run` has just completed or failed for good: notify its watchers and wake
// the parents that join it.
void FinishedForGood(const LockedRun &run, TimestampTz now);

// A child reached a terminal state: settles the join steps waiting on it and makes those
// parents pending. The parents must already be locked (they are: ancestors first).
void WakeJoiners(Datum child_task_id, TimestampTz now);

// Cancels each root and its unfinished descendants; wakes the parents joining a root.
// reason: JSON text stored as the error of the cancelled tasks, or none. Returns how many.
// With wait false (the background worker), a tree any of whose rows another transaction
// holds is left alone instead of waited for.
int CancelTrees(Datum root_ids /* uuid[] */, TimestampTz now, const std::optional<std::string> &reason,
                bool wait = true);

// Locks these tasks (uuid[]) FOR UPDATE in task_id order.
void LockTasks(Datum task_ids);

// Serializes emit_event and await_event of one (queue, event) for the transaction.
void LockEvent(const std::string &queue, const std::string &event);

// The steps of a task recorded by the run-scoped calls, read back on replay.
std::optional<std::string> StepValue(Datum task_id, const std::string &step); // JSON text
void RecordStep(Datum task_id, const std::string &step, const std::string &value_json, Datum run_id,
                TimestampTz now);

} // namespace belay
