// spawn and spawn_many: enqueueing work.
#include "belay/spawn.hpp"

#include "belay/args.hpp"
#include "belay/notify.hpp"
#include "belay/queues.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/validation.hpp"
#include "belay/worker.hpp"

#include <cmath>

namespace belay {

// The queue's policy fills what the options leave out: one statement, no extra lookup.
// An unknown queue inserts nothing, and the caller tells why.
#define BELAY_MAX_DELAY "coalesce($12, (q.policy OPERATOR(pg_catalog.#>>) '{cancellation,max_delay_seconds}')::float8)"
#define BELAY_TASK_DEFAULTS                                                                        \
	"coalesce($8, (q.policy OPERATOR(pg_catalog.->>) 'max_attempts')::integer, 5), "              \
	"coalesce($9::jsonb, q.policy OPERATOR(pg_catalog.->) 'retry'), "                             \
	"$10, $11, " BELAY_MAX_DELAY ", "                                                              \
	"coalesce($13, (q.policy OPERATOR(pg_catalog.#>>) '{cancellation,max_duration_seconds}')::float8), " \
	"$14 OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => " BELAY_MAX_DELAY "), "

#define BELAY_TASK_COLUMNS                                                                         \
	"(task_id, queue, task_name, params, headers, state, priority, max_attempts, retry_policy, "   \
	"available_at, idempotency_key, max_delay_seconds, max_duration_seconds, cancel_at, created_at, " \
	"parent_task_id, parent_step) "

namespace {

// A new id for a child, greater than its parent's: the lock order (lifecycle.hpp) takes
// task_id order as ancestors first, which a clock that stepped back must not break.
Datum ChildUuidDatum(Datum parent) {
	Datum child = NewUuidDatum();
	PgGuard([&] {
		pg_uuid_t *c = DatumGetUUIDP(child);
		const pg_uuid_t *p = DatumGetUUIDP(parent);
		if (memcmp(c->data, p->data, UUID_LEN) > 0)
			return;
		memcpy(c->data, p->data, UUID_LEN);
		for (int i = UUID_LEN - 1; i >= 9; --i) // the random tail, clear of version and variant bits
			if (++c->data[i] != 0)
				break;
	});
	return child;
}

const char *StateFor(TimestampTz available_at, TimestampTz now) {
	return available_at > now ? "scheduled" : "pending";
}

// $5 headers .. $13 shared by spawn and spawn_many.
void AddOptionParams(spi::Params &params, const SpawnOptions &options, const char *state, TimestampTz available_at) {
	params.Text(options.headers).Text(std::string(state)).Int4(options.priority).Int4(options.max_attempts);
	if (options.retry)
		params.Text(options.retry->ToJson().dump());
	else
		params.Null();
	params.Timestamptz(available_at);
	params.Text(options.idempotency_key);
	params.Float8(options.cancellation.max_delay_seconds).Float8(options.cancellation.max_duration_seconds);
}

} // namespace

TimestampTz AvailableAt(const SpawnOptions &options, TimestampTz now) {
	if (options.run_at)
		return ParseTimestamptz(*options.run_at, "options.run_at");
	if (options.delay_seconds)
		return now + static_cast<TimestampTz>(std::llround(*options.delay_seconds * USECS_PER_SEC));
	return now;
}

SpawnedTask InsertTask(const NewTask &task, TimestampTz now) {
	static spi::Statement insert(
	    "INSERT INTO belay.tasks AS t " BELAY_TASK_COLUMNS
	    "SELECT $1, q.queue, $3, $4, coalesce($5::jsonb, '{}'::jsonb), $6, $7::smallint, " BELAY_TASK_DEFAULTS
	    "$14, $15, $16 "
	    "FROM belay.queues q WHERE q.queue OPERATOR(pg_catalog.=) $2 FOR KEY SHARE OF q "
	    "ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
	    "RETURNING t.task_id, t.cancel_at",
	    {UUIDOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
	     FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID, UUIDOID, TEXTOID});
	static spi::Statement existing(
	    "SELECT task_id FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) $1 "
	    "AND idempotency_key OPERATOR(pg_catalog.=) $2",
	    {TEXTOID, TEXTOID});

	TimestampTz available_at = AvailableAt(task.options, now);
	const char *state = StateFor(available_at, now);
	spi::Params params;
	params.Add(task.parent_task_id ? ChildUuidDatum(task.parent_task_id) : NewUuidDatum()).Text(task.queue).Text(task.task_name).Add(task.params);
	AddOptionParams(params, task.options, state, available_at);
	params.Timestamptz(now);
	if (task.parent_task_id)
		params.Add(task.parent_task_id);
	else
		params.Null();
	params.Text(task.parent_step);

	if (insert.Run(params) == 1) {
		SpawnedTask spawned{spi::Value(0, 0), true};
		if (available_at <= now)
			NotifyQueue(task.queue);
		else
			WakeWorkerBy(available_at);
		bool no_deadline = true;
		Datum cancel_at = spi::Value(0, 1, &no_deadline);
		if (!no_deadline)
			WakeWorkerBy(DatumGetTimestampTz(cancel_at));
		return spawned;
	}
	if (task.options.idempotency_key) {
		spi::Params lookup;
		lookup.Text(task.queue).Text(*task.options.idempotency_key);
		if (existing.Run(lookup) == 1)
			return SpawnedTask{spi::Value(0, 0), false};
	}
	RequireQueue(task.queue);
	throw Error(sqlstate::kInternal, "belay: task with idempotency key was removed concurrently; try again");
}

namespace {

Datum Spawn(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	NewTask task;
	task.queue = args.Text(0, "queue");
	CheckQueueName(task.queue);
	task.task_name = args.Text(1, "task_name");
	CheckName(task.task_name, "task_name");
	task.params = args.Json(2, "params", JsonShape::Object);
	task.options = ParseSpawnOptions(args.JsonText(3, "options", JsonShape::Object), SpawnKind::Single);
	TimestampTz now = Now();

	ResultSet result(fcinfo);
	spi::Connection spi;
	SpawnedTask spawned = InsertTask(task, now);
	Datum values[2] = {spawned.task_id, BoolGetDatum(spawned.created)};
	bool nulls[2] = {false, false};
	result.Add(values, nulls);
	return Datum(0);
}

// Every element of a spawn_many params array must be an object; returns how many.
int CheckParamsArray(Datum params) {
	int count = 0;
	bool all_objects = true;
	int bad_index = -1;
	PgGuard([&] {
		Jsonb *jb = DatumGetJsonbP(params);
		JsonbIterator *it = JsonbIteratorInit(&jb->root);
		JsonbValue value;
		JsonbIteratorToken token;
		while ((token = JsonbIteratorNext(&it, &value, true)) != WJB_DONE) {
			if (token != WJB_ELEM)
				continue;
			bool is_object = value.type == jbvBinary && (value.val.binary.data->header & JB_FOBJECT);
			if (!is_object && all_objects) {
				all_objects = false;
				bad_index = count;
			}
			++count;
		}
	});
	if (!all_objects)
		ThrowInvalid("params must be an array of JSON objects; element " + std::to_string(bad_index) +
		             " is not an object");
	return count;
}

Datum SpawnMany(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::string queue = args.Text(0, "queue");
	CheckQueueName(queue);
	std::string task_name = args.Text(1, "task_name");
	CheckName(task_name, "task_name");
	Datum params_array = args.Json(2, "params", JsonShape::Array);
	int count = CheckParamsArray(params_array);
	SpawnOptions options = ParseSpawnOptions(args.JsonText(3, "options", JsonShape::Object), SpawnKind::Many);
	TimestampTz now = Now();
	TimestampTz available_at = AvailableAt(options, now);

	// One statement for the batch ($1, the count, is not used in it: it keeps the
	// numbering of the parameters shared with spawn). uuidv7() is volatile, so it runs after the sort, in
	// array order; the ids increase, and ordering by them returns the batch in order.
	// The queue row is locked once, in its own CTE (a locking clause beside the join
	// would lock it again for every element).
	static spi::Statement insert(
	    "WITH q AS (SELECT queue, policy FROM belay.queues WHERE queue OPERATOR(pg_catalog.=) $2 FOR KEY SHARE), "
	    "inserted AS ("
	    " INSERT INTO belay.tasks AS t " BELAY_TASK_COLUMNS
	    " SELECT belay.uuidv7(), q.queue, $3, e.value, coalesce($5::jsonb, '{}'::jsonb), $6, $7::smallint, "
	    BELAY_TASK_DEFAULTS "$14, NULL, NULL "
	    " FROM q, pg_catalog.jsonb_array_elements($4) WITH ORDINALITY AS e(value, n) ORDER BY e.n "
	    " RETURNING t.task_id, t.cancel_at) "
	    "SELECT task_id, true, (SELECT pg_catalog.min(cancel_at) FROM inserted) FROM inserted ORDER BY task_id",
	    {INT4OID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
	     FLOAT8OID, FLOAT8OID, TIMESTAMPTZOID});

	ResultSet result(fcinfo);
	spi::Connection spi;
	spi::Params params;
	params.Int4(count).Text(queue).Text(task_name).Add(params_array);
	AddOptionParams(params, options, StateFor(available_at, now), available_at);
	params.Timestamptz(now);
	uint64 inserted = insert.Run(params);
	if (inserted == 0)
		RequireQueue(queue); // an empty array is fine; an unknown queue is not
	bool no_deadline = true;
	Datum first_deadline = inserted > 0 ? spi::Value(0, 2, &no_deadline) : 0;
	for (uint64 row = 0; row < inserted; ++row) {
		Datum values[2] = {spi::Value(row, 0), spi::Value(row, 1)};
		bool nulls[2] = {false, false};
		result.Add(values, nulls);
	}
	if (inserted > 0 && available_at <= now)
		NotifyQueue(queue);
	else if (inserted > 0)
		WakeWorkerBy(available_at);
	if (!no_deadline)
		WakeWorkerBy(DatumGetTimestampTz(first_deadline));
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_spawn, belay::Spawn)
BELAY_FUNCTION(belay_spawn_many, belay::SpawnMany)
