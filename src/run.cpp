// The run lifecycle: complete, fail, heartbeat. Each acts only on a live run (the task is
// running under this run_id and its lease has not expired); otherwise ThrowNotLive.
#include "belay/args.hpp"
#include "belay/fencing.hpp"
#include "belay/notify.hpp"
#include "belay/random.hpp"
#include "belay/retry_policy.hpp"
#include "belay/spi.hpp"
#include "belay/validation.hpp"

#include <cmath>

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

	// The task row and the run's history row in one statement.
	static spi::Statement complete(
	    "WITH done AS ("
	    " UPDATE belay.tasks t SET state = 'completed', result = $3, finished_at = $2, run_id = NULL, "
	    "  lease_expires_at = NULL "
	    " WHERE " BELAY_LIVE_RUN " RETURNING t.task_id, t.attempt, t.worker, t.run_started_at) "
	    "INSERT INTO belay.runs (run_id, task_id, attempt, worker, started_at, ended_at, outcome) "
	    "SELECT $1, task_id, attempt, worker, run_started_at, $2, 'completed' FROM done",
	    {UUIDOID, TIMESTAMPTZOID, JSONBOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(run_id).Timestamptz(now);
	if (result)
		params.Add(*result);
	else
		params.Null();
	if (complete.Run(params) != 1)
		ThrowNotLive(run_id, now);
	PG_RETURN_VOID();
}

Datum Fail(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	Datum error = args.Json(1, "error", JsonShape::Any);
	std::optional<TimestampTz> retry_at = args.OptTimestamptz(2);
	bool final = args.Bool(3, "final");
	TimestampTz now = Now();

	static spi::Statement lock(
	    "SELECT t.task_id, t.attempt, t.max_attempts, t.retry_policy::text, t.queue, t.worker, t.run_started_at "
	    "FROM belay.tasks t WHERE " BELAY_LIVE_RUN " FOR UPDATE",
	    {UUIDOID, TIMESTAMPTZOID});
	static spi::Statement end(
	    "WITH ended AS ("
	    " UPDATE belay.tasks SET state = $4, attempt = $5, available_at = $6, error = $7, finished_at = $8, "
	    "  run_id = NULL, lease_expires_at = NULL "
	    " WHERE task_id OPERATOR(pg_catalog.=) $3 RETURNING task_id) "
	    "INSERT INTO belay.runs (run_id, task_id, attempt, worker, started_at, ended_at, outcome, error) "
	    "SELECT $1, task_id, $9, $10, $11, $2, 'failed', $7 FROM ended",
	    {UUIDOID, TIMESTAMPTZOID, UUIDOID, TEXTOID, INT4OID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID, INT4OID,
	     TEXTOID, TIMESTAMPTZOID});

	spi::Connection spi;
	spi::Params params;
	params.Add(run_id).Timestamptz(now);
	if (lock.Run(params) != 1)
		ThrowNotLive(run_id, now);
	Datum task_id = spi::Value(0, 0);
	int attempt = spi::Int4Value(0, 1);
	int max_attempts = spi::Int4Value(0, 2);
	std::optional<std::string> policy_json = spi::OptTextValue(0, 3);
	std::string queue = spi::TextValue(0, 4);
	std::string worker = spi::TextValue(0, 5);
	Datum run_started_at = spi::Value(0, 6);

	RetryPolicy policy;
	if (policy_json)
		policy = RetryPolicy::FromJson(nlohmann::json::parse(*policy_json), "retry policy");

	bool retried = !final && attempt < max_attempts;
	std::string state = "failed";
	TimestampTz available_at = now;
	if (retried) {
		available_at = retry_at ? *retry_at
		                        : now + static_cast<TimestampTz>(std::llround(
		                                    policy.DelaySeconds(attempt, RandomUnit()) * USECS_PER_SEC));
		state = available_at > now ? "scheduled" : "pending";
	}

	spi::Params update;
	update.Add(run_id).Timestamptz(now).Add(task_id).Text(state).Int4(retried ? attempt + 1 : attempt);
	update.Timestamptz(available_at).Add(error);
	if (retried)
		update.Null();
	else
		update.Timestamptz(now);
	update.Int4(attempt).Text(worker).Add(run_started_at);
	end.Run(update);

	if (state == "pending")
		NotifyQueue(queue);
	return TextDatum(retried ? "pending" : "failed");
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
