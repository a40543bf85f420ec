// Checkpoints (durable steps): set_checkpoint by a live run, checkpoints() to read them.
#include "belay/args.hpp"
#include "belay/fencing.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"
#include "belay/validation.hpp"

namespace belay {
namespace {

Datum SetCheckpoint(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::string step = args.Text(1, "step");
	CheckName(step, "step");
	Datum value = args.Json(2, "value", JsonShape::Any);
	TimestampTz now = Now();

	// FOR SHARE holds off a concurrent cancel or completion until this commits: a step is
	// only ever recorded by the run that holds the task.
	static spi::Statement upsert(
	    "INSERT INTO belay.checkpoints AS c (task_id, step, value, run_id, updated_at) "
	    "SELECT t.task_id, $3, $4, $1, $2 FROM belay.tasks t "
	    "WHERE " BELAY_LIVE_RUN " FOR SHARE OF t "
	    "ON CONFLICT (task_id, step) DO UPDATE SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, "
	    " updated_at = EXCLUDED.updated_at",
	    {UUIDOID, TIMESTAMPTZOID, TEXTOID, JSONBOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(run_id).Timestamptz(now).Text(step).Add(value);
	if (upsert.Run(params) != 1)
		ThrowNotLive(run_id);
	PG_RETURN_VOID();
}

Datum Checkpoints(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum task_id = args.Uuid(0, "task_id");
	static spi::Statement list("SELECT step, value, updated_at FROM belay.checkpoints "
	                           "WHERE task_id OPERATOR(pg_catalog.=) $1 ORDER BY updated_at, step",
	                           {UUIDOID});
	ResultSet result(fcinfo);
	spi::Connection spi;
	spi::Params params;
	params.Add(task_id);
	result.AddAllSpiRows(list.Run(params));
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_set_checkpoint, belay::SetCheckpoint)
BELAY_FUNCTION(belay_checkpoints, belay::Checkpoints)
