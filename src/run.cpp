// The run lifecycle: complete, fail, heartbeat. Each acts only on a live run (the task is
// running under this run_id and its lease has not expired); otherwise ThrowNotLive.
#include "belay/args.hpp"
#include "belay/fencing.hpp"
#include "belay/lifecycle.hpp"
#include "belay/notify.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"
#include "belay/validation.hpp"

#include <string>
#include <unordered_set>
#include <vector>

namespace belay {
namespace {

Datum Complete(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::optional<Datum> result = args.OptJson(1);
	TimestampTz now = Now();

	// The completing run stays in the task row (run_id is kept): belay.runs reads it from
	// there. Only for tasks without a parent: a child's parent must be locked first
	// (lifecycle.hpp), so children take the slower path below.
#define BELAY_COMPLETE_SQL(WHERE)                                                                                 \
	"UPDATE belay.tasks t SET state = 'completed', result = $3, error = NULL, finished_at = $2, "              \
	" lease_expires_at = NULL WHERE " WHERE
	static spi::Statement complete_root(BELAY_COMPLETE_SQL(BELAY_LIVE_RUN " AND t.parent_task_id IS NULL "
	                                                                      "RETURNING t.task_id, t.watched"),
	                                    {UUIDOID, TIMESTAMPTZOID, JSONBOID});
	static spi::Statement complete_locked(BELAY_COMPLETE_SQL("t.task_id OPERATOR(pg_catalog.=) $1"),
	                                      {UUIDOID, TIMESTAMPTZOID, JSONBOID});
#undef BELAY_COMPLETE_SQL

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
	complete_locked.Run(locked);
	FinishedForGood(run, now);
	PG_RETURN_VOID();
}

// The runs of a batch, as arrays of equal length; results may be absent (all NULL).
struct Batch {
	Datum run_ids;
	std::optional<Datum> results;
	int size;
};

Batch ReadBatch(const Arguments &args) {
	Batch batch{args.Raw(0), std::nullopt, 0};
	if (args.IsNull(0))
		ThrowNull("run_ids");
	int result_count = -1;
	bool null_run = false;
	PgGuard([&] {
		ArrayType *runs = DatumGetArrayTypeP(args.Raw(0));
		batch.run_ids = PointerGetDatum(runs);
		batch.size = ArrayGetNItems(ARR_NDIM(runs), ARR_DIMS(runs));
		null_run = array_contains_nulls(runs);
		if (!args.IsNull(1)) {
			ArrayType *results = DatumGetArrayTypeP(args.Raw(1));
			batch.results = PointerGetDatum(results);
			result_count = ArrayGetNItems(ARR_NDIM(results), ARR_DIMS(results));
		}
	});
	if (null_run)
		ThrowInvalid("run_ids must not contain nulls");
	if (batch.size > 10000)
		ThrowInvalid("run_ids may hold at most 10000 runs");
	if (batch.results && result_count != batch.size)
		ThrowInvalid("results must have one element per run_id", "Pass NULL for no results.");
	return batch;
}

Datum CompleteMany(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Batch batch = ReadBatch(args);
	TimestampTz now = Now();

	// Every task still running under these runs and the parents of child tasks, locked in
	// task_id order first (lifecycle.hpp): the update below then waits for nothing. (A
	// one-statement update of the parentless ones alone was tried: it locked rows in plan
	// order, which can deadlock against cancel and drop_queue, and measured no faster.)
	static spi::Statement involved(
	    "WITH live AS (SELECT task_id, parent_task_id FROM belay.tasks "
	    " WHERE run_id OPERATOR(pg_catalog.=) ANY ($1) AND state = 'running') "
	    "SELECT pg_catalog.array_agg(id) FROM ("
	    " SELECT task_id AS id FROM live UNION SELECT parent_task_id FROM live WHERE parent_task_id IS NOT NULL) ids",
	    {UUIDARRAYOID}, true);
	// Returns the runs it completed; the caller reports on every run of the batch.
	static spi::Statement complete(
	    "UPDATE belay.tasks t SET state = 'completed', result = i.result, error = NULL, finished_at = $3, "
	    " lease_expires_at = NULL "
	    "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS i(run_id, result) "
	    "WHERE t.run_id OPERATOR(pg_catalog.=) i.run_id AND t.state = 'running' "
	    " AND t.lease_expires_at OPERATOR(pg_catalog.>) $3 "
	    "RETURNING t.run_id, t.task_id, t.watched, t.parent_task_id IS NOT NULL",
	    {UUIDARRAYOID, JSONBARRAYOID, TIMESTAMPTZOID}, true);

	ResultSet result(fcinfo);
	spi::Connection spi;
	spi::Params lock_params;
	lock_params.Add(batch.run_ids);
	involved.Run(lock_params);
	bool none = true;
	Datum task_ids = spi::Value(0, 0, &none);
	if (!none)
		LockTasks(task_ids);
	spi::Params params;
	params.Add(batch.run_ids);
	if (batch.results)
		params.Add(*batch.results);
	else
		params.Null();
	params.Timestamptz(now);
	uint64 rows = complete.Run(params);
	std::unordered_set<std::string> completed;
	std::vector<Datum> finished_children;
	for (uint64 row = 0; row < rows; ++row) {
		completed.insert(UuidBytesOf(spi::Value(row, 0)));
		if (spi::BoolValue(row, 2))
			NotifyFinished(spi::Value(row, 1));
		if (spi::BoolValue(row, 3))
			finished_children.push_back(spi::Value(row, 1));
	}
	// One row per run of the batch, in its order: was it completed by this call?
	for (Datum run_id : UuidArrayElements(batch.run_ids)) {
		Datum values[2] = {run_id, BoolGetDatum(completed.count(UuidBytesOf(run_id)) > 0)};
		bool nulls[2] = {false, false};
		result.Add(values, nulls);
	}
	for (Datum child : finished_children)
		WakeJoiners(child, now); // their parents are locked above
	return Datum(0);
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
		ThrowNotLive(run_id);
	return spi::Value(0, 0); // timestamptz is passed by value
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_complete, belay::Complete)
BELAY_FUNCTION(belay_complete_many, belay::CompleteMany)
BELAY_FUNCTION(belay_fail, belay::Fail)
BELAY_FUNCTION(belay_heartbeat, belay::Heartbeat)
