// belay.tick(now, batch_size): one round of the background worker. A SQL function so the
// worker runs it like any caller would, and tests can drive it with a fixed clock.
#include "belay/args.hpp"
#include "belay/lifecycle.hpp"
#include "belay/notify.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/steps.hpp"
#include "belay/states.hpp"

#include <set>
#include <vector>

namespace belay {
namespace {

std::vector<Datum> CopyColumn(uint64 rows, int column) {
	std::vector<Datum> out;
	for (uint64 row = 0; row < rows; ++row)
		out.push_back(spi::Value(row, column));
	return out;
}

// Runs a statement that makes tasks pending (with $1 now and $2 the batch size) and
// returns their queues; notifies each queue once. Returns how many tasks.
int RunAndNotify(spi::Statement &statement, TimestampTz now, int batch) {
	spi::Params params;
	params.Timestamptz(now).Int4(batch);
	uint64 rows = statement.Run(params);
	std::set<std::string> queues;
	for (uint64 row = 0; row < rows; ++row)
		queues.insert(spi::TextValue(row, 0));
	for (const std::string &queue : queues)
		NotifyQueue(queue);
	return static_cast<int>(rows);
}

// Cancellation deadlines, tree by tree, never waiting: a tree someone holds a row of is
// left for the next tick.
int CancelDue(TimestampTz now, int batch) {
	static spi::Statement due("SELECT ARRAY[task_id], first_started_at IS NULL FROM belay.tasks "
	                          "WHERE cancel_at OPERATOR(pg_catalog.<=) $1 AND state NOT IN " BELAY_TERMINAL_STATES
	                          " ORDER BY cancel_at LIMIT $2",
	                          {TIMESTAMPTZOID, INT4OID});
	spi::Params params;
	params.Timestamptz(now).Int4(batch);
	uint64 rows = due.Run(params);
	std::vector<std::pair<Datum, bool>> roots;
	for (uint64 row = 0; row < rows; ++row)
		roots.emplace_back(spi::Value(row, 0), spi::BoolValue(row, 1));
	int cancelled = 0;
	for (const auto &[root, not_started] : roots) {
		std::string reason = not_started ? R"({"kind": "cancelled", "reason": "max_delay_seconds"})"
		                                 : R"({"kind": "cancelled", "reason": "max_duration_seconds"})";
		cancelled += CancelTrees(root, now, reason, false);
	}
	return cancelled;
}

int WakeDue(TimestampTz now, int batch) {
	// Queue by queue through tasks_due_idx: a probe per queue when nothing is due.
	static spi::Statement wake(
	    "UPDATE belay.tasks t SET state = 'pending' "
	    "FROM (SELECT d.task_id FROM belay.queues q, LATERAL ("
	    "       SELECT task_id, available_at FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) q.queue"
	    "       AND state IN ('scheduled', 'sleeping') AND available_at OPERATOR(pg_catalog.<=) $1"
	    "       ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED) d"
	    "      ORDER BY d.available_at LIMIT $2) due "
	    "WHERE t.task_id OPERATOR(pg_catalog.=) due.task_id RETURNING t.queue",
	    {TIMESTAMPTZOID, INT4OID});
	return RunAndNotify(wake, now, batch);
}

int TimeOutWaits(TimestampTz now, int batch) {
	static spi::Statement timeout(
	    "WITH due AS ("
	    " SELECT w.task_id FROM belay.waits w JOIN belay.tasks t ON t.task_id OPERATOR(pg_catalog.=) w.task_id"
	    " WHERE w.deadline OPERATOR(pg_catalog.<=) $1 AND t.state = 'waiting'"
	    " ORDER BY w.deadline LIMIT $2 FOR UPDATE OF t SKIP LOCKED), "
	    "settled AS ("
	    " DELETE FROM belay.waits w USING due WHERE w.task_id OPERATOR(pg_catalog.=) due.task_id"
	    " RETURNING w.task_id, w.step, w.run_id, w.event IS NOT NULL AS is_event), "
	    "steps AS ("
	    " INSERT INTO belay.checkpoints (task_id, step, value, run_id, updated_at)"
	    " SELECT task_id, step, CASE WHEN is_event"
	    "   THEN '" BELAY_TIMED_OUT_EVENT_STEP "'::jsonb"
	    "   ELSE '" BELAY_TIMED_OUT_JOIN_STEP "'::jsonb"
	    "   END, run_id, $1"
	    " FROM settled ON CONFLICT (task_id, step) DO NOTHING) "
	    "UPDATE belay.tasks t SET state = 'pending', available_at = $1 FROM settled s "
	    "WHERE t.task_id OPERATOR(pg_catalog.=) s.task_id RETURNING t.queue",
	    {TIMESTAMPTZOID, INT4OID});
	return RunAndNotify(timeout, now, batch);
}

int ReclaimLeases(TimestampTz now, int batch) {
	static spi::Statement expired("SELECT task_id FROM belay.tasks WHERE state = 'running' "
	                              "AND lease_expires_at OPERATOR(pg_catalog.<=) $1 "
	                              "ORDER BY lease_expires_at LIMIT $2",
	                              {TIMESTAMPTZOID, INT4OID});
	static spi::Statement error("SELECT pg_catalog.jsonb_build_object('kind', 'lease_expired', 'worker', $1::text, "
	                            "'lease_expired_at', $2::timestamptz)",
	                            {TEXTOID, TIMESTAMPTZOID});
	static spi::Statement lease_of("SELECT lease_expires_at FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1",
	                               {UUIDOID});
	spi::Params params;
	params.Timestamptz(now).Int4(batch);
	std::vector<Datum> candidates = CopyColumn(expired.Run(params), 0);
	int reclaimed = 0;
	for (Datum task_id : candidates) {
		LockedRun run;
		if (!LockExpiredRun(task_id, now, &run))
			continue; // held by someone else: the next tick tries again
		spi::Params by_task;
		by_task.Add(task_id);
		lease_of.Run(by_task);
		spi::Params error_params;
		error_params.Text(run.worker).Add(spi::Value(0, 0));
		error.Run(error_params);
		FailRun(run, spi::Value(0, 0), std::nullopt, false, "lease_expired", now);
		++reclaimed;
	}
	return reclaimed;
}

Datum Tick(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	TimestampTz now = args.Timestamptz(0, "now");
	int batch = args.Int4(1, "batch_size");
	if (batch < 1 || batch > 100000)
		ThrowInvalid("batch_size must be between 1 and 100000");

	static spi::Statement next_due(
	    "SELECT LEAST("
	    " (SELECT pg_catalog.min(d.due) FROM belay.queues q, LATERAL (SELECT pg_catalog.min(available_at) AS due"
	    "   FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) q.queue AND state IN ('scheduled', 'sleeping')) d),"
	    " (SELECT pg_catalog.min(w.deadline) FROM belay.waits w JOIN belay.tasks t"
	    "   ON t.task_id OPERATOR(pg_catalog.=) w.task_id WHERE w.deadline IS NOT NULL AND t.state = 'waiting'),"
	    " (SELECT pg_catalog.min(lease_expires_at) FROM belay.tasks WHERE state = 'running'),"
	    " (SELECT pg_catalog.min(cancel_at) FROM belay.tasks WHERE cancel_at IS NOT NULL"
	    "   AND state NOT IN " BELAY_TERMINAL_STATES "))",
	    {});

	ResultSet result(fcinfo);
	spi::Connection spi;
	int woken = WakeDue(now, batch);
	int timed_out = TimeOutWaits(now, batch);
	int reclaimed = ReclaimLeases(now, batch);
	int cancelled = CancelDue(now, batch);
	spi::Params none;
	next_due.Run(none);
	bool no_due = true;
	Datum due = spi::Value(0, 0, &no_due);
	Datum values[5] = {Int32GetDatum(woken), Int32GetDatum(timed_out), Int32GetDatum(reclaimed),
	                   Int32GetDatum(cancelled), due};
	bool nulls[5] = {false, false, false, false, no_due};
	result.Add(values, nulls);
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_tick, belay::Tick)
