// Inspection and maintenance: task() and cleanup().
#include "belay/args.hpp"
#include "belay/queues.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"
#include "belay/validation.hpp"

namespace belay {
namespace {

Datum Task(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum task_id = args.Uuid(0, "task_id");
	static spi::Statement task(
	    "SELECT task_id, queue, task_name, " BELAY_PUBLIC_STATE("state") ", attempt, max_attempts, params, "
	    " result, error, parent_task_id, created_at, available_at, finished_at "
	    "FROM belay.tasks WHERE task_id OPERATOR(pg_catalog.=) $1",
	    {UUIDOID});
	ResultSet result(fcinfo);
	spi::Connection spi;
	spi::Params params;
	params.Add(task_id);
	result.AddAllSpiRows(task.Run(params));
	return Datum(0);
}

Datum Cleanup(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::optional<std::string> queue = args.OptText(0);
	if (queue)
		CheckQueueName(*queue);
	if (args.IsNull(1))
		ThrowNull("older_than");
	Datum older_than = args.Raw(1);
	TimestampTz now = Now();
	TimestampTz cutoff = 0;
	try {
		PgGuard([&] {
			cutoff = DatumGetTimestampTz(
			    DirectFunctionCall2(timestamptz_mi_interval, TimestampTzGetDatum(now), older_than));
		});
	} catch (const PgError &) { // the arithmetic overflowed; it changed no state
		ThrowInvalid("older_than is out of range");
	}
	// Judged as a whole: '1 day -1 hour' is a positive interval.
	if (cutoff > now)
		ThrowInvalid("older_than must not be negative");

	// Runs and checkpoints go with their task (ON DELETE CASCADE).
	static spi::Statement all("DELETE FROM belay.tasks WHERE state IN " BELAY_TERMINAL_STATES
	                          " AND finished_at OPERATOR(pg_catalog.<) $1",
	                          {TIMESTAMPTZOID});
	static spi::Statement one("DELETE FROM belay.tasks WHERE state IN " BELAY_TERMINAL_STATES
	                          " AND finished_at OPERATOR(pg_catalog.<) $1 AND queue OPERATOR(pg_catalog.=) $2",
	                          {TIMESTAMPTZOID, TEXTOID});
	spi::Connection spi;
	spi::Params params;
	params.Timestamptz(cutoff);
	uint64 deleted = 0;
	if (queue) {
		RequireQueue(*queue);
		params.Text(*queue);
		deleted = one.Run(params);
	} else {
		deleted = all.Run(params);
	}
	return Int64GetDatum(static_cast<int64>(deleted));
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_task, belay::Task)
BELAY_FUNCTION(belay_cleanup, belay::Cleanup)
