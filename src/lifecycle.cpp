// Ending, suspending, waking and cancelling tasks (see lifecycle.hpp for the lock order).
#include "belay/lifecycle.hpp"

#include "belay/args.hpp"
#include "belay/fencing.hpp"
#include "belay/notify.hpp"
#include "belay/random.hpp"
#include "belay/retry_policy.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"
#include "belay/worker.hpp"

#include <cmath>
#include <vector>

namespace belay {
namespace {

#define BELAY_RUN_COLUMNS                                                                          \
	"t.task_id, t.run_id, t.attempt, t.max_attempts, t.retry_policy::text, t.queue, t.worker, "   \
	"t.run_started_at, t.parent_task_id, t.watched "

LockedRun ReadRun() {
	LockedRun run;
	run.task_id = spi::Value(0, 0);
	run.run_id = spi::Value(0, 1);
	run.attempt = spi::Int4Value(0, 2);
	run.max_attempts = spi::Int4Value(0, 3);
	run.retry_policy = spi::OptTextValue(0, 4);
	run.queue = spi::TextValue(0, 5);
	run.worker = spi::TextValue(0, 6);
	run.run_started_at = spi::Value(0, 7);
	bool null = false;
	Datum parent = spi::Value(0, 8, &null);
	run.parent_task_id = null ? 0 : parent;
	run.watched = spi::BoolValue(0, 9);
	return run;
}

void NotifyQueues(uint64 rows, int column) {
	for (uint64 row = 0; row < rows; ++row)
		NotifyQueue(spi::TextValue(row, column));
}

} // namespace

void FinishedForGood(const LockedRun &run, TimestampTz now) {
	if (run.watched)
		NotifyFinished(run.task_id);
	if (run.parent_task_id)
		WakeJoiners(run.task_id, now);
}

LockedRun LockLiveRun(Datum run_id, TimestampTz now, bool lock_parent) {
	static spi::Statement parent_of("SELECT parent_task_id FROM belay.tasks "
	                                "WHERE run_id OPERATOR(pg_catalog.=) $1 AND state = 'running' "
	                                "AND parent_task_id IS NOT NULL",
	                                {UUIDOID});
	static spi::Statement lock_task("SELECT 1 FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	                                {UUIDOID});
	static spi::Statement lock_run("SELECT " BELAY_RUN_COLUMNS "FROM belay.tasks t "
	                               "WHERE " BELAY_LIVE_RUN " FOR UPDATE",
	                               {UUIDOID, TIMESTAMPTZOID});
	if (lock_parent) {
		spi::Params by_run;
		by_run.Add(run_id);
		if (parent_of.Run(by_run) == 1) {
			spi::Params parent;
			parent.Add(spi::Value(0, 0));
			lock_task.Run(parent);
		}
	}
	spi::Params params;
	params.Add(run_id).Timestamptz(now);
	if (lock_run.Run(params) != 1)
		ThrowNotLive(run_id);
	return ReadRun();
}

bool LockExpiredRun(Datum task_id, TimestampTz now, LockedRun *run) {
	// Only a parent that still exists (cleanup or drop_queue may have removed it) has to
	// be locked first.
	static spi::Statement parent_of("SELECT t.parent_task_id FROM belay.tasks t "
	                                "JOIN belay.tasks p ON p.task_id OPERATOR(pg_catalog.=) t.parent_task_id "
	                                "WHERE t.task_id OPERATOR(pg_catalog.=) $1",
	                                {UUIDOID});
	static spi::Statement try_lock("SELECT 1 FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1 "
	                               "FOR UPDATE SKIP LOCKED",
	                               {UUIDOID});
	static spi::Statement lock_run("SELECT " BELAY_RUN_COLUMNS "FROM belay.tasks t "
	                               "WHERE t.task_id OPERATOR(pg_catalog.=) $1 AND t.state = 'running' "
	                               "AND t.lease_expires_at OPERATOR(pg_catalog.<=) $2 FOR UPDATE SKIP LOCKED",
	                               {UUIDOID, TIMESTAMPTZOID});
	spi::Params by_task;
	by_task.Add(task_id);
	if (parent_of.Run(by_task) == 1) {
		spi::Params parent;
		parent.Add(spi::Value(0, 0));
		if (try_lock.Run(parent) != 1)
			return false;
	}
	spi::Params params;
	params.Add(task_id).Timestamptz(now);
	if (lock_run.Run(params) != 1)
		return false;
	*run = ReadRun();
	return true;
}

std::string FailRun(const LockedRun &run, Datum error, std::optional<TimestampTz> retry_at, bool final,
                    const char *outcome, TimestampTz now) {
	static spi::Statement end(
	    "WITH ended AS ("
	    " UPDATE belay.tasks SET state = $4, attempt = $5, available_at = $6, error = $7, finished_at = $8, "
	    "  run_id = NULL, lease_expires_at = NULL "
	    " WHERE task_id OPERATOR(pg_catalog.=) $3 RETURNING task_id) "
	    "INSERT INTO belay.run_history (run_id, task_id, attempt, worker, started_at, ended_at, outcome, error) "
	    "SELECT $1, task_id, $9, $10, $11, $2, $12, $7 FROM ended",
	    {UUIDOID, TIMESTAMPTZOID, UUIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID, INT4OID,
	     TEXTOID, TIMESTAMPTZOID, TEXTOID});

	RetryPolicy policy;
	if (run.retry_policy)
		policy = RetryPolicy::FromJson(nlohmann::json::parse(*run.retry_policy), "retry policy");
	bool retried = !final && run.attempt < run.max_attempts;
	std::string state = "failed";
	TimestampTz available_at = now;
	if (retried) {
		double delay = policy.DelaySeconds(run.attempt, RandomUnit());
		available_at = retry_at ? *retry_at : now + static_cast<TimestampTz>(std::llround(delay * USECS_PER_SEC));
		state = available_at > now ? "scheduled" : "pending";
	}

	spi::Params params;
	params.Add(run.run_id).Timestamptz(now).Add(run.task_id).Text(state).Int4(retried ? run.attempt + 1 : run.attempt);
	params.Timestamptz(available_at).Add(error);
	if (retried)
		params.Null();
	else
		params.Timestamptz(now);
	params.Int4(run.attempt).Text(run.worker).Add(run.run_started_at).Text(std::string(outcome));
	end.Run(params);

	if (state == "pending")
		NotifyQueue(run.queue);
	else if (state == "scheduled")
		WakeWorkerBy(available_at);
	else
		FinishedForGood(run, now);
	return retried ? "pending" : "failed";
}

void SuspendRun(const LockedRun &run, const char *state, std::optional<TimestampTz> available_at, TimestampTz now) {
	static spi::Statement suspend(
	    "WITH suspended AS ("
	    " UPDATE belay.tasks SET state = $3, available_at = coalesce($4, available_at), run_id = NULL, "
	    "  lease_expires_at = NULL "
	    " WHERE task_id OPERATOR(pg_catalog.=) $2 RETURNING task_id) "
	    "INSERT INTO belay.run_history (run_id, task_id, attempt, worker, started_at, ended_at, outcome) "
	    "SELECT $1, task_id, $5, $6, $7, $8, 'suspended' FROM suspended",
	    {UUIDOID, UUIDOID, TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID});
	spi::Params params;
	params.Add(run.run_id).Add(run.task_id).Text(std::string(state));
	if (available_at)
		params.Timestamptz(*available_at);
	else
		params.Null();
	params.Int4(run.attempt).Text(run.worker).Add(run.run_started_at).Timestamptz(now);
	suspend.Run(params);
}

void WakeJoiners(Datum child_task_id, TimestampTz now) {
	static spi::Statement wake(
	    "WITH parents AS ("
	    " SELECT w.task_id FROM belay.waits w JOIN belay.tasks p ON p.task_id OPERATOR(pg_catalog.=) w.task_id"
	    " WHERE w.child_task_id OPERATOR(pg_catalog.=) $1 AND p.state = 'waiting'"
	    " ORDER BY w.task_id FOR UPDATE OF p), "
	    "settled AS ("
	    " DELETE FROM belay.waits w USING parents WHERE w.task_id OPERATOR(pg_catalog.=) parents.task_id"
	    " RETURNING w.task_id, w.step, w.run_id), "
	    "steps AS ("
	    " INSERT INTO belay.checkpoints (task_id, step, value, run_id, updated_at)"
	    " SELECT s.task_id, s.step, pg_catalog.jsonb_build_object('state', c.state, 'result', c.result,"
	    "   'error', c.error, 'timed_out', false), s.run_id, $2"
	    " FROM settled s, belay.tasks c WHERE c.task_id OPERATOR(pg_catalog.=) $1"
	    " ON CONFLICT (task_id, step) DO NOTHING) "
	    "UPDATE belay.tasks t SET state = 'pending', available_at = $2 FROM settled s "
	    "WHERE t.task_id OPERATOR(pg_catalog.=) s.task_id RETURNING t.queue",
	    {UUIDOID, TIMESTAMPTZOID});
	spi::Params params;
	params.Add(child_task_id).Timestamptz(now);
	NotifyQueues(wake.Run(params), 0);
}

void LockTasks(Datum task_ids) {
	// One simple statement: a locking query that joins or scans CTEs can, when a row
	// changes while it waits, drop that row on its re-check instead of locking it.
	static spi::Statement lock("SELECT 1 FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) ANY ($1) "
	                           "ORDER BY task_id FOR UPDATE",
	                           {UUIDARRAYOID});
	spi::Params params;
	params.Add(task_ids);
	lock.Run(params);
}

bool TryLockTasks(Datum task_ids) {
	static spi::Statement lock("SELECT (SELECT pg_catalog.count(*) FROM (SELECT 1 FROM belay.tasks "
	                           " WHERE task_id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY task_id "
	                           " FOR UPDATE SKIP LOCKED) locked) OPERATOR(pg_catalog.=) "
	                           "(SELECT pg_catalog.count(*) FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) ANY ($1))",
	                           {UUIDARRAYOID});
	spi::Params params;
	params.Add(task_ids);
	lock.Run(params);
	return spi::BoolValue(0, 0);
}

int CancelTrees(Datum root_ids, TimestampTz now, const std::optional<std::string> &reason, bool wait) {
	// The trees and the roots' parents (to wake their joins), found without locks.
	static spi::Statement find(
	    "WITH RECURSIVE tree AS ("
	    " SELECT task_id FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) ANY ($1)"
	    " UNION"
	    " SELECT c.task_id FROM belay.tasks c JOIN tree ON c.parent_task_id OPERATOR(pg_catalog.=) tree.task_id) "
	    "SELECT (SELECT pg_catalog.array_agg(task_id) FROM tree), "
	    " (SELECT pg_catalog.array_agg(task_id) FROM (SELECT task_id FROM tree UNION "
	    "  SELECT parent_task_id FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) ANY ($1) "
	    "  AND parent_task_id IS NOT NULL) everything)",
	    {UUIDARRAYOID});
	// After the locks, in a statement of its own: its snapshot sees every row as locked.
	// Times are read now too: a run claimed while we waited must not end before it started.
	static spi::Statement cancel(
	    "WITH victims AS ("
	    " SELECT task_id, state, run_id, attempt, worker, run_started_at FROM belay.tasks"
	    " WHERE task_id OPERATOR(pg_catalog.=) ANY ($1) AND state NOT IN " BELAY_TERMINAL_STATES "), "
	    "cancelled AS ("
	    " UPDATE belay.tasks t SET state = 'cancelled', finished_at = pg_catalog.clock_timestamp(), run_id = NULL,"
	    "  lease_expires_at = NULL, error = $2::jsonb"
	    " FROM victims v WHERE t.task_id OPERATOR(pg_catalog.=) v.task_id RETURNING t.task_id, t.watched), "
	    "ended_runs AS ("
	    " INSERT INTO belay.run_history (run_id, task_id, attempt, worker, started_at, ended_at, outcome)"
	    " SELECT v.run_id, v.task_id, v.attempt, v.worker, v.run_started_at, pg_catalog.clock_timestamp(), 'cancelled'"
	    " FROM victims v WHERE v.state = 'running' AND v.run_id IS NOT NULL) "
	    "SELECT c.task_id, c.watched FROM cancelled c",
	    {UUIDARRAYOID, TEXTOID});
	static spi::Statement drop_waits("DELETE FROM belay.waits WHERE task_id OPERATOR(pg_catalog.=) ANY ($1)",
	                                 {UUIDARRAYOID});
	// A child spawned while we waited for a lock is found by the next pass; the cancelled
	// parent's run can spawn no more, so the passes end.
	int total = 0;
	for (int pass = 0; pass < 100; ++pass) {
		spi::Params roots;
		roots.Add(root_ids);
		find.Run(roots);
		bool none = true;
		Datum tree = spi::Value(0, 0, &none);
		if (none)
			break;
		if (wait)
			LockTasks(spi::Value(0, 1));
		else if (!TryLockTasks(spi::Value(0, 1)))
			break; // someone holds part of the tree: the next tick tries again
		spi::Params params;
		params.Add(tree).Text(reason);
		uint64 cancelled = cancel.Run(params);
		if (cancelled == 0)
			break;
		total += static_cast<int>(cancelled);
		std::vector<Datum> ids;
		for (uint64 row = 0; row < cancelled; ++row) {
			ids.push_back(spi::Value(row, 0));
			if (spi::BoolValue(row, 1))
				NotifyFinished(ids.back());
		}
		Datum cancelled_ids = 0;
		PgGuard([&] {
			cancelled_ids = PointerGetDatum(
			    construct_array(ids.data(), static_cast<int>(ids.size()), UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
		});
		spi::Params drop;
		drop.Add(cancelled_ids);
		drop_waits.Run(drop);
		// The cancelled tasks' parents that join them wake up with state 'cancelled'.
		for (Datum id : ids)
			WakeJoiners(id, now);
	}
	return total;
}

void LockEvent(const std::string &queue, const std::string &event) {
	// The two-key advisory lock space with belay's own first key, so it never meets the
	// single-bigint locks applications take.
	static spi::Statement lock("SELECT pg_catalog.pg_advisory_xact_lock(1651270009, "
	                           "pg_catalog.hashtext($1 OPERATOR(pg_catalog.||) pg_catalog.chr(1) "
	                           "OPERATOR(pg_catalog.||) $2))",
	                           {TEXTOID, TEXTOID});
	spi::Params params;
	params.Text(queue).Text(event);
	lock.Run(params);
}

std::optional<std::string> StepValue(Datum task_id, const std::string &step) {
	static spi::Statement read("SELECT value::text FROM belay.checkpoints "
	                           "WHERE task_id OPERATOR(pg_catalog.=) $1 AND step OPERATOR(pg_catalog.=) $2",
	                           {UUIDOID, TEXTOID});
	spi::Params params;
	params.Add(task_id).Text(step);
	if (read.Run(params) == 0)
		return std::nullopt;
	return spi::TextValue(0, 0);
}

void RecordStep(Datum task_id, const std::string &step, const std::string &value_json, Datum run_id,
                TimestampTz now) {
	static spi::Statement record("INSERT INTO belay.checkpoints (task_id, step, value, run_id, updated_at) "
	                             "VALUES ($1, $2, $3::jsonb, $4, $5)",
	                             {UUIDOID, TEXTOID, TEXTOID, UUIDOID, TIMESTAMPTZOID});
	spi::Params params;
	params.Add(task_id).Text(step).Text(value_json).Add(run_id).Timestamptz(now);
	record.Run(params);
}

} // namespace belay
