// Operator controls: cancel (a task and its unfinished descendants) and retry.
#include "belay/args.hpp"
#include "belay/lifecycle.hpp"
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

	spi::Connection spi;
	Datum roots = 0;
	PgGuard([&] {
		Datum elements[1] = {task_id};
		roots = PointerGetDatum(construct_array(elements, 1, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	});
	int count = CancelTrees(roots, now, std::nullopt);
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
	    " available_at = $2, finished_at = NULL, result = NULL, error = NULL, cancel_at = NULL "
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

Datum Watch(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum task_id = args.Uuid(0, "task_id");
	static spi::Statement watch("UPDATE belay.tasks SET watched = true WHERE task_id OPERATOR(pg_catalog.=) $1 "
	                            "RETURNING " BELAY_PUBLIC_STATE("state"),
	                            {UUIDOID});
	std::string state;
	{
		spi::Connection spi;
		spi::Params params;
		params.Add(task_id);
		if (watch.Run(params) == 0)
			ThrowNoTask(task_id);
		state = spi::TextValue(0, 0);
	}
	return TextDatum(state);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_watch, belay::Watch)
BELAY_FUNCTION(belay_cancel, belay::Cancel)
BELAY_FUNCTION(belay_retry, belay::Retry)
