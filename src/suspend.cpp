// The run-scoped calls that may suspend a run: sleep, await_event, join; and spawn_child.
// Each records its outcome as a step of the task, so a re-run after a suspension or a
// crash gets the same answer instead of doing the thing again.
#include "belay/args.hpp"
#include "belay/lifecycle.hpp"
#include "belay/options.hpp"
#include "belay/result_set.hpp"
#include "belay/spawn.hpp"
#include "belay/spi.hpp"
#include "belay/steps.hpp"
#include "belay/states.hpp"
#include "belay/validation.hpp"
#include "belay/worker.hpp"

#include <cmath>

namespace belay {
namespace {

TimestampTz AddSeconds(TimestampTz at, double seconds) {
	return at + static_cast<TimestampTz>(std::llround(seconds * USECS_PER_SEC));
}

// ISO 8601 in UTC, whatever the session's DateStyle and TimeZone, so a replay under other
// settings reads back the same instant.
std::string TimestampJson(TimestampTz at) {
	std::string out;
	PgGuard([&] {
		const int utc = 0;
		char *text = JsonEncodeDateTime(nullptr, TimestampTzGetDatum(at), TIMESTAMPTZOID, &utc);
		out = text;
		pfree(text);
	});
	return nlohmann::json(out).dump();
}

// Records what the run waits for (an event of its queue, or a child) and suspends it: the
// task is 'waiting' until an emit, the child's end, or the deadline.
void WaitAndSuspend(const LockedRun &run, const std::string &step, const std::optional<std::string> &event,
                    Datum child_id, std::optional<double> timeout, TimestampTz now) {
	static spi::Statement wait("INSERT INTO belay.waits (task_id, step, run_id, queue, event, child_task_id, deadline) "
	                           "VALUES ($1, $2, $3, $4, $5, $6, $7)",
	                           {UUIDOID, TEXTOID, UUIDOID, TEXTOID, TEXTOID, UUIDOID, TIMESTAMPTZOID});
	std::optional<TimestampTz> deadline;
	if (timeout)
		deadline = AddSeconds(now, *timeout);
	spi::Params params;
	params.Add(run.task_id).Text(step).Add(run.run_id);
	if (event)
		params.Text(run.queue).Text(*event).Null();
	else
		params.Null().Null().Add(child_id);
	if (deadline)
		params.Timestamptz(*deadline);
	else
		params.Null();
	wait.Run(params);
	SuspendRun(run, "waiting", std::nullopt, now);
	if (deadline)
		WakeWorkerBy(*deadline);
}

// sleep: the first call of a step fixes the wake time; later calls read it back.
Datum Sleep(FunctionCallInfo fcinfo, bool relative) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::string step = args.Text(1, "step");
	CheckName(step, "step");
	TimestampTz now = Now();
	TimestampTz wake_at = 0;
	if (relative) {
		double seconds = args.Number(2, "seconds");
		CheckTimeoutSeconds(seconds, "seconds");
		wake_at = AddSeconds(now, seconds);
	} else {
		wake_at = args.Timestamptz(2, "wake_at");
	}

	spi::Connection spi;
	LockedRun run = LockLiveRun(run_id, now, false);
	if (std::optional<std::string> recorded = StepValue(run.task_id, step)) {
		nlohmann::json value = nlohmann::json::parse(*recorded);
		if (!value.is_object() || !value.contains("wake_at") || !value["wake_at"].is_string())
			ThrowInvalid("step \"" + step + "\" is not a sleep", "Steps of one task share one namespace.");
		wake_at = ParseTimestamptz(value["wake_at"].get<std::string>(), "recorded wake time");
	} else {
		RecordStep(run.task_id, step, "{\"wake_at\": " + TimestampJson(wake_at) + "}", run.run_id, now);
	}
	if (wake_at <= now)
		return BoolGetDatum(false);
	SuspendRun(run, "sleeping", wake_at, now);
	WakeWorkerBy(wake_at);
	return BoolGetDatum(true);
}

Datum SleepUntil(FunctionCallInfo fcinfo) { return Sleep(fcinfo, false); }
Datum SleepFor(FunctionCallInfo fcinfo) { return Sleep(fcinfo, true); }

void AddAwaitRow(ResultSet &result, bool suspended, const std::optional<std::string> &payload, bool timed_out) {
	Datum values[3] = {BoolGetDatum(suspended), 0, BoolGetDatum(timed_out)};
	bool nulls[3] = {false, !payload.has_value(), false};
	if (payload)
		PgGuard([&] { values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(payload->c_str())); });
	result.Add(values, nulls);
}

Datum AwaitEvent(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::string step = args.Text(1, "step");
	CheckName(step, "step");
	std::string event = args.Text(2, "event");
	CheckName(event, "event");
	std::optional<double> timeout = args.OptNumber(3, "timeout_seconds");
	if (timeout)
		CheckTimeoutSeconds(*timeout);
	TimestampTz now = Now();

	static spi::Statement queue_of("SELECT queue FROM belay.tasks "
	                               "WHERE run_id OPERATOR(pg_catalog.=) $1 AND state = 'running'",
	                               {UUIDOID});
	static spi::Statement emitted("SELECT payload::text FROM belay.events "
	                              "WHERE queue OPERATOR(pg_catalog.=) $1 AND event OPERATOR(pg_catalog.=) $2",
	                              {TEXTOID, TEXTOID});

	ResultSet result(fcinfo);
	spi::Connection spi;
	// The event lock comes before the task row (lifecycle.hpp): an emit either sees our
	// wait or we see its payload.
	spi::Params by_run;
	by_run.Add(run_id);
	if (queue_of.Run(by_run) == 1)
		LockEvent(spi::TextValue(0, 0), event);
	LockedRun run = LockLiveRun(run_id, now, false);

	if (std::optional<std::string> recorded = StepValue(run.task_id, step)) {
		nlohmann::json value = nlohmann::json::parse(*recorded);
		if (!value.is_object() || !value.contains("timed_out") || !value["timed_out"].is_boolean() ||
		    !value.contains("payload"))
			ThrowInvalid("step \"" + step + "\" is not an event wait", "Steps of one task share one namespace.");
		std::optional<std::string> payload;
		if (!value["payload"].is_null())
			payload = value["payload"].dump();
		AddAwaitRow(result, false, payload, value["timed_out"].get<bool>());
		return Datum(0);
	}
	spi::Params lookup;
	lookup.Text(run.queue).Text(event);
	if (emitted.Run(lookup) == 1) {
		std::optional<std::string> payload = spi::OptTextValue(0, 0);
		nlohmann::json value = {{"payload", payload ? nlohmann::json::parse(*payload) : nlohmann::json()},
		                        {"timed_out", false}};
		RecordStep(run.task_id, step, value.dump(), run.run_id, now);
		AddAwaitRow(result, false, payload, false);
		return Datum(0);
	}
	if (timeout && *timeout == 0) {
		RecordStep(run.task_id, step, BELAY_TIMED_OUT_EVENT_STEP, run.run_id, now);
		AddAwaitRow(result, false, std::nullopt, true);
		return Datum(0);
	}
	WaitAndSuspend(run, step, event, 0, timeout, now);
	AddAwaitRow(result, true, std::nullopt, false);
	return Datum(0);
}

Datum SpawnChild(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::string step = args.Text(1, "step");
	CheckName(step, "step");
	NewTask task;
	task.task_name = args.Text(2, "task_name");
	CheckName(task.task_name, "task_name");
	task.params = args.Json(3, "params", JsonShape::Object);
	task.options = ParseSpawnOptions(args.JsonText(4, "options", JsonShape::Object), SpawnKind::Child);
	TimestampTz now = Now();

	spi::Connection spi;
	LockedRun run = LockLiveRun(run_id, now, false);
	Datum child_id = 0;
	if (std::optional<std::string> recorded = StepValue(run.task_id, step)) {
		nlohmann::json value = nlohmann::json::parse(*recorded);
		if (!value.is_object() || !value.contains("child_task_id") || !value["child_task_id"].is_string())
			ThrowInvalid("step \"" + step + "\" is not a child spawn", "Steps of one task share one namespace.");
		std::string id = value["child_task_id"].get<std::string>();
		// Allocated in the caller's context: SPI_finish frees what is made inside SPI.
		PgGuard([&] {
			child_id = DirectFunctionCall1(uuid_in, CStringGetDatum(id.c_str()));
			child_id = SPI_datumTransfer(child_id, false, UUID_LEN);
		});
		return child_id;
	}
	task.queue = task.options.queue.value_or(run.queue);
	task.parent_task_id = run.task_id;
	task.parent_step = step;
	SpawnedTask spawned = InsertTask(task, now);
	child_id = spawned.task_id;
	RecordStep(run.task_id, step, nlohmann::json{{"child_task_id", UuidToString(child_id)}}.dump(), run.run_id, now);
	PgGuard([&] { child_id = SPI_datumTransfer(child_id, false, UUID_LEN); });
	return child_id;
}

void AddJoinRow(ResultSet &result, bool suspended, const nlohmann::json &outcome) {
	Datum values[4] = {BoolGetDatum(suspended), 0, 0, 0};
	bool nulls[4] = {false, true, true, true};
	if (outcome.is_object()) {
		if (outcome.contains("state") && outcome["state"].is_string()) {
			values[1] = TextDatum(outcome["state"].get<std::string>());
			nulls[1] = false;
		}
		const char *keys[2] = {"result", "error"};
		for (int i = 0; i < 2; ++i) {
			if (outcome.contains(keys[i]) && !outcome[keys[i]].is_null()) {
				std::string text = outcome[keys[i]].dump();
				PgGuard([&] { values[2 + i] = DirectFunctionCall1(jsonb_in, CStringGetDatum(text.c_str())); });
				nulls[2 + i] = false;
			}
		}
	}
	result.Add(values, nulls);
}

Datum Join(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	Datum run_id = args.Uuid(0, "run_id");
	std::string step = args.Text(1, "step");
	CheckName(step, "step");
	Datum child_id = args.Uuid(2, "child_task_id");
	std::optional<double> timeout = args.OptNumber(3, "timeout_seconds");
	if (timeout)
		CheckTimeoutSeconds(*timeout);
	TimestampTz now = Now();

	// The child row is locked after the parent's (ancestors first); a child that ends
	// concurrently locks the parent first, so one of us sees the other's work.
	static spi::Statement child("SELECT state, result::text, error::text, parent_task_id "
	                            "OPERATOR(pg_catalog.=) $2 FROM belay.tasks "
	                            "WHERE task_id OPERATOR(pg_catalog.=) $1 FOR SHARE",
	                            {UUIDOID, UUIDOID});

	ResultSet result(fcinfo);
	spi::Connection spi;
	LockedRun run = LockLiveRun(run_id, now, false);
	if (std::optional<std::string> recorded = StepValue(run.task_id, step)) {
		nlohmann::json value = nlohmann::json::parse(*recorded);
		if (!value.is_object() || !value.contains("timed_out") || !value["timed_out"].is_boolean() ||
		    !value.contains("state"))
			ThrowInvalid("step \"" + step + "\" is not a join", "Steps of one task share one namespace.");
		AddJoinRow(result, false, value);
		return Datum(0);
	}
	spi::Params lookup;
	lookup.Add(child_id).Add(run.task_id);
	if (child.Run(lookup) == 0)
		ThrowInvalid("child_task_id " + UuidToString(child_id) + " does not exist");
	bool null = false;
	spi::Value(0, 3, &null);
	if (null || !spi::BoolValue(0, 3))
		ThrowInvalid("task " + UuidToString(child_id) + " is not a child of this task",
		             "Join only the tasks this task spawned with spawn_child.");
	std::string state = spi::TextValue(0, 0);
	if (state == "completed" || state == "failed" || state == "cancelled") {
		std::optional<std::string> child_result = spi::OptTextValue(0, 1);
		std::optional<std::string> child_error = spi::OptTextValue(0, 2);
		nlohmann::json value = {{"state", state},
		                        {"result", child_result ? nlohmann::json::parse(*child_result) : nlohmann::json()},
		                        {"error", child_error ? nlohmann::json::parse(*child_error) : nlohmann::json()},
		                        {"timed_out", false}};
		RecordStep(run.task_id, step, value.dump(), run.run_id, now);
		AddJoinRow(result, false, value);
		return Datum(0);
	}
	if (timeout && *timeout == 0) {
		RecordStep(run.task_id, step, BELAY_TIMED_OUT_JOIN_STEP, run.run_id, now);
		AddJoinRow(result, false, nlohmann::json::parse(BELAY_TIMED_OUT_JOIN_STEP));
		return Datum(0);
	}
	WaitAndSuspend(run, step, std::nullopt, child_id, timeout, now);
	AddJoinRow(result, true, nlohmann::json());
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_sleep_until, belay::SleepUntil)
BELAY_FUNCTION(belay_sleep_for, belay::SleepFor)
BELAY_FUNCTION(belay_await_event, belay::AwaitEvent)
BELAY_FUNCTION(belay_spawn_child, belay::SpawnChild)
BELAY_FUNCTION(belay_join, belay::Join)
