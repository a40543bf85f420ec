// Operator controls: cancel (a task and its unfinished descendants) and retry.
#include "belay/args.hpp"
#include "belay/notify.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"

namespace belay {
namespace {

[[noreturn]] void ThrowNoTask(Datum task_id) {
	ThrowInvalid("task " + UuidToString(task_id) + " does not exist");
}

bool TaskExists(Datum task_id) {
	static spi::Statement exists("SELECT 1 FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1", {UUIDOID});
	spi::Params params;
	params.Add(task_id);
	return exists.Run(params) == 1;
}

Datum Cancel(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum task_id = args.Uuid(0, "task_id");
	TimestampTz now = Now();

	// Lock order: the unfinished tasks of the tree in task_id order, the same order every
	// multi-task statement in belay locks in, so two cancels never deadlock. A live run is
	// ended ('cancelled' in belay.runs); its worker gets BL002 on its next call.
	static spi::Statement cancel(
	    "WITH RECURSIVE tree AS ("
	    " SELECT task_id FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1"
	    " UNION"
	    " SELECT c.task_id FROM belay.tasks c JOIN tree ON c.parent_task_id OPERATOR(pg_catalog.=) tree.task_id), "
	    "victims AS ("
	    " SELECT t.task_id, t.state, t.run_id, t.attempt, t.worker, t.run_started_at"
	    " FROM belay.tasks t JOIN tree ON t.task_id OPERATOR(pg_catalog.=) tree.task_id"
	    " WHERE t.state NOT IN " BELAY_TERMINAL_STATES " ORDER BY t.task_id FOR UPDATE OF t), "
	    "cancelled AS ("
	    " UPDATE belay.tasks t SET state = 'cancelled', finished_at = $2, run_id = NULL, lease_expires_at = NULL"
	    " FROM victims v WHERE t.task_id OPERATOR(pg_catalog.=) v.task_id"
	    "   AND t.state NOT IN " BELAY_TERMINAL_STATES " RETURNING t.task_id), "
	    "ended_runs AS ("
	    " INSERT INTO belay.runs (run_id, task_id, attempt, worker, started_at, ended_at, outcome)"
	    " SELECT v.run_id, v.task_id, v.attempt, v.worker, v.run_started_at, $2, 'cancelled'"
	    " FROM victims v JOIN cancelled c ON c.task_id OPERATOR(pg_catalog.=) v.task_id"
	    " WHERE v.run_id IS NOT NULL) "
	    "SELECT pg_catalog.count(*)::integer FROM cancelled",
	    {UUIDOID, TIMESTAMPTZOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(task_id).Timestamptz(now);
	cancel.Run(params);
	int32 count = spi::Int4Value(0, 0);
	if (count == 0 && !TaskExists(task_id))
		ThrowNoTask(task_id);
	return Int32GetDatum(count);
}

Datum Retry(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum task_id = args.Uuid(0, "task_id");
	TimestampTz now = Now();

	static spi::Statement retry(
	    "UPDATE belay.tasks SET state = 'pending', attempt = attempt OPERATOR(pg_catalog.+) 1, "
	    " max_attempts = pg_catalog.int4larger(max_attempts, attempt OPERATOR(pg_catalog.+) 1), "
	    " available_at = $2, finished_at = NULL, result = NULL, error = NULL "
	    "WHERE task_id OPERATOR(pg_catalog.=) $1 AND state IN ('failed', 'cancelled') RETURNING queue",
	    {UUIDOID, TIMESTAMPTZOID});
	static spi::Statement state("SELECT " BELAY_PUBLIC_STATE("state") " FROM belay.tasks "
	                            "WHERE task_id OPERATOR(pg_catalog.=) $1",
	                            {UUIDOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(task_id).Timestamptz(now);
	if (retry.Run(params) == 1) {
		NotifyQueue(spi::TextValue(0, 0));
		PG_RETURN_VOID();
	}
	spi::Params lookup;
	lookup.Add(task_id);
	if (state.Run(lookup) == 0)
		ThrowNoTask(task_id);
	throw Error(sqlstate::kObjectState,
	            "task " + UuidToString(task_id) + " is " + spi::TextValue(0, 0) + ", not failed or cancelled", {},
	            "Only a failed or cancelled task can be retried.");
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_cancel, belay::Cancel)
BELAY_FUNCTION(belay_retry, belay::Retry)
