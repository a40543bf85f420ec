// The run lifecycle: complete, fail, heartbeat. Each acts only on a live run (the task is
// running under this run_id and its lease has not expired); otherwise ThrowNotLive.
#include "belay/args.hpp"
#include "belay/fencing.hpp"
#include "belay/lifecycle.hpp"
#include "belay/notify.hpp"
#include "belay/spi.hpp"
#include "belay/validation.hpp"


namespace belay {
namespace {

// The live-run condition, on table alias t, with $1 the run and $2 now.
#define BELAY_LIVE_RUN                                                                             \
	"t.run_id OPERATOR(pg_catalog.=) $1 AND t.state = 'running' "                                 \
	"AND t.lease_expires_at OPERATOR(pg_catalog.>) $2"

Datum Complete(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::optional<Datum> result = args.OptJson(1);
	TimestampTz now = Now();

	// The task row and the run's history row in one statement. Only for tasks without a
	// parent: a child's parent must be locked first (lifecycle.hpp), so children take the
	// slower path below.
	static spi::Statement complete_root(
	    "WITH done AS ("
	    " UPDATE belay.tasks t SET state = 'completed', result = $3, error = NULL, finished_at = $2, run_id = NULL, "
	    "  lease_expires_at = NULL "
	    " WHERE " BELAY_LIVE_RUN " AND t.parent_task_id IS NULL "
	    " RETURNING t.task_id, t.attempt, t.worker, t.run_started_at, t.watched), "
	    "ended AS ("
	    " INSERT INTO belay.runs (run_id, task_id, attempt, worker, started_at, ended_at, outcome) "
	    " SELECT $1, task_id, attempt, worker, run_started_at, $2, 'completed' FROM done) "
	    "SELECT task_id, watched FROM done",
	    {UUIDOID, TIMESTAMPTZOID, JSONBOID});
	static spi::Statement complete_locked(
	    "WITH done AS ("
	    " UPDATE belay.tasks t SET state = 'completed', result = $3, error = NULL, finished_at = $2, run_id = NULL, "
	    "  lease_expires_at = NULL "
	    " WHERE t.task_id OPERATOR(pg_catalog.=) $1 RETURNING t.task_id) "
	    "INSERT INTO belay.runs (run_id, task_id, attempt, worker, started_at, ended_at, outcome) "
	    "SELECT $4, task_id, $5, $6, $7, $2, 'completed' FROM done",
	    {UUIDOID, TIMESTAMPTZOID, JSONBOID, UUIDOID, INT4OID, TEXTOID, TIMESTAMPTZOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(run_id).Timestamptz(now);
	if (result)
		params.Add(*result);
	else
		params.Null();
	if (complete_root.Run(params) == 1) {
		if (spi::BoolValue(0, 1))
			NotifyFinished(spi::Value(0, 0));
		PG_RETURN_VOID();
	}

	LockedRun run = LockLiveRun(run_id, now, true); // raises if the run is not live
	spi::Params locked;
	locked.Add(run.task_id).Timestamptz(now);
	if (result)
		locked.Add(*result);
	else
		locked.Null();
	locked.Add(run.run_id).Int4(run.attempt).Text(run.worker).Add(run.run_started_at);
	complete_locked.Run(locked);
	FinishedForGood(run, now);
	PG_RETURN_VOID();
}

Datum Fail(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	Datum error = args.Json(1, "error", JsonShape::Any);
	std::optional<TimestampTz> retry_at = args.OptTimestamptz(2, "retry_at");
	bool final = args.Bool(3, "final");
	TimestampTz now = Now();

	std::string state;
	{
		spi::Connection spi;
		LockedRun run = LockLiveRun(run_id, now, true);
		state = FailRun(run, error, retry_at, final, "failed", now);
	}
	// After SPI_finish: a text made inside the connection would be freed with it.
	return TextDatum(state);
}

Datum Heartbeat(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::optional<double> lease_seconds = args.OptNumber(1, "lease_seconds");
	if (lease_seconds)
		CheckLeaseSeconds(*lease_seconds);
	TimestampTz now = Now();

	// Without lease_seconds the lease is extended by the length it was claimed with.
	static spi::Statement extend(
	    "UPDATE belay.tasks t SET lease_expires_at = $2 OPERATOR(pg_catalog.+) "
	    " pg_catalog.make_interval(secs => coalesce($3, t.lease_seconds)) "
	    "WHERE " BELAY_LIVE_RUN " RETURNING t.lease_expires_at",
	    {UUIDOID, TIMESTAMPTZOID, FLOAT8OID});

	spi::Connection spi;
	spi::Params params;
	params.Add(run_id).Timestamptz(now).Float8(lease_seconds);
	if (extend.Run(params) != 1)
		ThrowNotLive(run_id, now);
	return spi::Value(0, 0); // timestamptz is passed by value
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_complete, belay::Complete)
BELAY_FUNCTION(belay_fail, belay::Fail)
BELAY_FUNCTION(belay_heartbeat, belay::Heartbeat)
