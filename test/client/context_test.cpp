// TaskContext: every feature a handler uses, with its failure paths, run by a real Worker
// against the scratch cluster.
#include "common.hpp"

#include <sys/stat.h>

namespace belay_test {

// A handler's exception type with a stable name for the recorded error kind.
struct FlakyError : std::runtime_error {
	using std::runtime_error::runtime_error;
};

namespace {

// Thread-safe notes a handler leaves for the test thread.
struct Notes {
	std::mutex mutex;
	std::vector<Json> items;
	void Add(Json item) {
		std::lock_guard<std::mutex> lock(mutex);
		items.push_back(std::move(item));
	}
	std::vector<Json> All() {
		std::lock_guard<std::mutex> lock(mutex);
		return items;
	}
};

// Runs "what" and names the exception it threw: "LeaseLost", "Cancelled", "Suspended",
// "Error: ...", or "none".
template <typename F>
std::string ThrownBy(F &&what) {
	try {
		what();
		return "none";
	} catch (const belay::LeaseLost &) {
		return "LeaseLost";
	} catch (const belay::Cancelled &) {
		return "Cancelled";
	} catch (const belay::Suspended &) {
		return "Suspended";
	} catch (const std::exception &e) {
		return std::string("other: ") + e.what();
	}
}

double LeaseRemaining(const std::string &task_id) {
	pqxx::connection connection(belay::DefaultConnectionString());
	pqxx::work tx(connection);
	return tx
	    .exec_params1("SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM belay.tasks "
	                  "WHERE task_id = $1::uuid",
	                  task_id)[0]
	    .as<double>();
}

// The task's live run in the database ("" when none).
std::string LiveRun(const std::string &task_id) {
	pqxx::connection connection(belay::DefaultConnectionString());
	pqxx::work tx(connection);
	pqxx::row row = tx.exec_params1(
	    "SELECT coalesce(run_id::text, '') || '|' || state FROM belay.tasks WHERE task_id = $1::uuid", task_id);
	std::string text = row[0].c_str();
	std::string run = text.substr(0, text.find('|'));
	std::string state = text.substr(text.find('|') + 1);
	return state == "running" ? run : "";
}

belay::SpawnOptions Retries(int max_attempts, double base_seconds = 0.1) {
	belay::SpawnOptions options;
	options.max_attempts = max_attempts;
	belay::RetryOptions retry;
	retry.kind = "fixed";
	retry.base_seconds = base_seconds;
	options.retry = retry;
	return options;
}

} // namespace

class TaskContextTest : public BelayTest {};

TEST_F(TaskContextTest, ExposesTheClaimedTask) {
	std::string q = MakeQueue();
	Notes notes;
	WorkerThread w(Options(q));
	w.Handle("inspect", [&](belay::TaskContext &ctx) -> Json {
		notes.Add({{"task_id", ctx.task_id()},
		           {"run_id", ctx.run_id()},
		           {"task_name", ctx.task_name()},
		           {"queue", ctx.queue()},
		           {"attempt", ctx.attempt()},
		           {"params", ctx.params()},
		           {"headers", ctx.headers()}});
		return {{"echo", ctx.params()["x"]}};
	});
	w.Start();
	belay::SpawnOptions options;
	options.headers = {{"trace", "abc"}};
	belay::Spawned s = client->spawn(q, "inspect", {{"x", 7}}, options);
	EXPECT_TRUE(s.created);
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"echo", 7}}));
	auto seen = notes.All();
	ASSERT_EQ(seen.size(), 1u);
	EXPECT_EQ(seen[0]["task_id"], s.task_id);
	EXPECT_FALSE(seen[0]["run_id"].get<std::string>().empty());
	EXPECT_NE(seen[0]["run_id"], s.task_id);
	EXPECT_EQ(seen[0]["task_name"], "inspect");
	EXPECT_EQ(seen[0]["queue"], q);
	EXPECT_EQ(seen[0]["attempt"], 1);
	EXPECT_EQ(seen[0]["params"], Json({{"x", 7}}));
	EXPECT_EQ(seen[0]["headers"], Json({{"trace", "abc"}}));
	EXPECT_EQ(CountRuns(s.task_id, "completed"), 1);
	EXPECT_EQ(w.worker().stats().completed, 1u);
}

// step: fn runs once across a replay (the replay comes from a sleep); a repeated name gets
// "name#2"; a void step is recorded too; Suspended is not a std::exception.
TEST_F(TaskContextTest, StepRunsOnceAcrossReplayAndNumbersRepeatedNames) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0}, a_runs{0}, a2_runs{0}, v_runs{0}, b_runs{0}, swallowed{0};
	WorkerThread w(Options(q));
	w.Handle("steps", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		int a = ctx.step("a", [&] {
			++a_runs;
			return 41;
		});
		std::string a2 = ctx.step("a", [&] {
			++a2_runs;
			return std::string("second");
		});
		ctx.step("v", [&] { ++v_runs; });
		try {
			ctx.sleep_for("nap", 300ms);
		} catch (const std::exception &) {
			++swallowed; // must not happen: Suspended is not a std::exception
		}
		std::vector<int> b = ctx.step("b", [&] {
			++b_runs;
			return std::vector<int>{1, 2, 3};
		});
		return {{"a", a}, {"a2", a2}, {"b", b}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "steps");
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"a", 41}, {"a2", "second"}, {"b", {1, 2, 3}}}));
	EXPECT_EQ(calls, 2) << "one run up to the sleep, one replay after it";
	EXPECT_EQ(a_runs, 1);
	EXPECT_EQ(a2_runs, 1);
	EXPECT_EQ(v_runs, 1);
	EXPECT_EQ(b_runs, 1);
	EXPECT_EQ(swallowed, 0);
	EXPECT_EQ(Checkpoint(s.task_id, "a"), Json(41));
	EXPECT_EQ(Checkpoint(s.task_id, "a#2"), Json("second"));
	EXPECT_EQ(Checkpoint(s.task_id, "v"), Json(nullptr));
	EXPECT_EQ(Checkpoint(s.task_id, "b"), Json({1, 2, 3}));
	EXPECT_FALSE(Checkpoint(s.task_id, "a#3").has_value());
	EXPECT_EQ(CountRuns(s.task_id, "suspended"), 1);
	EXPECT_EQ(CountRuns(s.task_id, "completed"), 1);
	EXPECT_EQ(w.worker().stats().suspended, 1u);
}

// A step whose fn throws records nothing; the retry replays the finished steps and runs
// the failed one again.
TEST_F(TaskContextTest, FailedStepIsNotRecordedAndRunsAgainOnRetry) {
	std::string q = MakeQueue();
	std::atomic<int> first_runs{0}, second_runs{0};
	WorkerThread w(Options(q));
	w.Handle("flaky-step", [&](belay::TaskContext &ctx) -> Json {
		ctx.step("first", [&] {
			++first_runs;
			return 1;
		});
		int attempt = ctx.step("second", [&] {
			++second_runs;
			if (ctx.attempt() == 1)
				throw FlakyError("second step fails on attempt 1");
			return ctx.attempt();
		});
		return {{"second", attempt}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "flaky-step", Json::object(), Retries(3));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.attempt, 2);
	EXPECT_EQ(info.result, Json({{"second", 2}}));
	EXPECT_EQ(first_runs, 1);
	EXPECT_EQ(second_runs, 2);
	EXPECT_EQ(Checkpoint(s.task_id, "second"), Json(2));
	EXPECT_EQ(CountRuns(s.task_id, "failed"), 1);
}

TEST_F(TaskContextTest, SleepForSuspendsThenResumesAfterTheTime) {
	std::string q = MakeQueue();
	std::mutex mutex;
	std::vector<Steady::time_point> starts;
	std::atomic<int> after{0};
	WorkerThread w(Options(q));
	w.Handle("nap", [&](belay::TaskContext &ctx) -> Json {
		{
			std::lock_guard<std::mutex> lock(mutex);
			starts.push_back(Steady::now());
		}
		ctx.sleep_for("nap", 1s);
		++after;
		return {{"woke", true}};
	});
	w.Start();
	auto t0 = Steady::now();
	belay::Spawned s = client->spawn(q, "nap");
	// While it sleeps, the task is "sleeping" and nothing after the sleep has run.
	EXPECT_TRUE(WaitState(s.task_id, "sleeping", 5s));
	EXPECT_EQ(after, 0);
	belay::TaskInfo info = WaitTerminal(s.task_id);
	double total = SecondsSince(t0);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(after, 1);
	ASSERT_EQ(starts.size(), 2u);
	double gap = std::chrono::duration<double>(starts[1] - starts[0]).count();
	EXPECT_GE(gap, 0.95) << "resumed before the sleep was over";
	EXPECT_LT(total, 10.0);
	EXPECT_EQ(CountRuns(s.task_id, "suspended"), 1);
	EXPECT_EQ(info.attempt, 1) << "a suspension is not a failed attempt";
	EXPECT_TRUE(Checkpoint(s.task_id, "nap").has_value()) << "the wake time is recorded under the step";
}

// sleep_until: a past time goes on at once; a future one suspends; the first run fixes the
// time (the replay asks for a later time and still goes on).
TEST_F(TaskContextTest, SleepUntilSuspendsUntilTheFirstRequestedTime) {
	std::string q = MakeQueue();
	std::mutex mutex;
	std::vector<Steady::time_point> starts;
	std::atomic<int> past_passed{0};
	WorkerThread w(Options(q));
	w.Handle("until", [&](belay::TaskContext &ctx) -> Json {
		{
			std::lock_guard<std::mutex> lock(mutex);
			starts.push_back(Steady::now());
		}
		ctx.sleep_until("past", belay::Clock::now() - std::chrono::hours(1));
		++past_passed;
		ctx.sleep_until("soon", belay::Clock::now() + 800ms);
		return {{"done", true}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "until");
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	ASSERT_EQ(starts.size(), 2u) << "one suspension only: the replay's later wake time must not count";
	EXPECT_EQ(past_passed, 2);
	double gap = std::chrono::duration<double>(starts[1] - starts[0]).count();
	EXPECT_GE(gap, 0.75);
	EXPECT_LT(gap, 8.0);
	EXPECT_EQ(CountRuns(s.task_id, "suspended"), 1);
}

TEST_F(TaskContextTest, AwaitEventAlreadyEmittedReturnsAtOnce) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0};
	WorkerThread w(Options(q));
	w.Handle("await", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		belay::EventResult r = ctx.await_event("w", "early-bird", 30s);
		return {{"payload", r.payload}, {"timed_out", r.timed_out}};
	});
	EXPECT_EQ(client->emit_event(q, "early-bird", {{"x", 1}}), 0) << "nobody waits yet";
	EXPECT_EQ(client->emit_event(q, "early-bird", {{"x", 2}}), 0) << "the latest emit wins";
	w.Start();
	belay::Spawned s = client->spawn(q, "await");
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"payload", {{"x", 2}}}, {"timed_out", false}}));
	EXPECT_EQ(calls, 1) << "no suspension for an event already emitted";
	EXPECT_EQ(CountRuns(s.task_id, "suspended"), 0);
}

TEST_F(TaskContextTest, AwaitEventSuspendsUntilEmitted) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0};
	WorkerThread w(Options(q));
	w.Handle("await", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		belay::EventResult r = ctx.await_event("w", "approval", 60s);
		return {{"payload", r.payload}, {"timed_out", r.timed_out}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "await");
	ASSERT_TRUE(WaitState(s.task_id, "waiting", 10s));
	EXPECT_EQ(calls, 1);
	EXPECT_EQ(client->emit_event(q, "other-event", {{"no", 1}}), 0);
	EXPECT_EQ(client->emit_event(q, "approval", {{"by", "alice"}}), 1) << "one task woken";
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"payload", {{"by", "alice"}}}, {"timed_out", false}}));
	EXPECT_EQ(calls, 2);
}

TEST_F(TaskContextTest, AwaitEventTimesOut) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0};
	WorkerThread w(Options(q));
	w.Handle("await", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		belay::EventResult r = ctx.await_event("w", "never-emitted", 0.5s);
		return {{"payload", r.payload}, {"timed_out", r.timed_out}};
	});
	w.Start();
	auto t0 = Steady::now();
	belay::Spawned s = client->spawn(q, "await");
	belay::TaskInfo info = WaitTerminal(s.task_id);
	double took = SecondsSince(t0);
	// An emit after the timeout changes nothing: the step stays timed out.
	EXPECT_EQ(client->emit_event(q, "never-emitted", {{"late", true}}), 0);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"payload", nullptr}, {"timed_out", true}}));
	EXPECT_EQ(calls, 2);
	EXPECT_GE(took, 0.45);
	EXPECT_LT(took, 10.0);
}

TEST_F(TaskContextTest, EmitEventFromHandlerWakesAwaiter) {
	std::string q = MakeQueue();
	WorkerThread w(Options(q));
	w.Handle("awaiter", [&](belay::TaskContext &ctx) -> Json {
		return {{"got", ctx.await_event("w", "ping", 60s).payload}};
	});
	w.Handle("emitter", [&](belay::TaskContext &ctx) -> Json {
		int woken = ctx.emit_event("ping", {{"from", ctx.task_id()}});
		return {{"woken", woken}};
	});
	w.Start();
	belay::Spawned a = client->spawn(q, "awaiter");
	ASSERT_TRUE(WaitState(a.task_id, "waiting", 10s));
	belay::Spawned b = client->spawn(q, "emitter");
	belay::TaskInfo bi = WaitTerminal(b.task_id);
	belay::TaskInfo ai = WaitTerminal(a.task_id);
	w.Stop();
	EXPECT_EQ(bi.state, "completed");
	EXPECT_EQ(bi.result, Json({{"woken", 1}}));
	EXPECT_EQ(ai.state, "completed");
	EXPECT_EQ(ai.result, Json({{"got", {{"from", b.task_id}}}}));
}

TEST_F(TaskContextTest, SpawnChildAndJoinCompletedChild) {
	std::string q = MakeQueue();
	Notes children;
	WorkerThread w(Options(q));
	w.Handle("parent", [&](belay::TaskContext &ctx) -> Json {
		std::string child = ctx.spawn_child("kid", "square", {{"n", 5}});
		children.Add(child);
		belay::JoinResult r = ctx.join("wait-kid", child, 60s);
		return {{"child", child}, {"state", r.state}, {"result", r.result}, {"error", r.error},
		        {"timed_out", r.timed_out}};
	});
	w.Handle("square", [&](belay::TaskContext &ctx) -> Json {
		int n = ctx.params()["n"];
		return {{"sq", n * n}};
	});
	w.Start();
	belay::Spawned p = client->spawn(q, "parent");
	belay::TaskInfo info = WaitTerminal(p.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	auto seen = children.All();
	ASSERT_EQ(seen.size(), 2u) << "the parent runs twice: before and after the join";
	EXPECT_EQ(seen[0], seen[1]) << "spawn_child is idempotent per step: the replay gets the same child";
	std::string child = seen[0];
	EXPECT_EQ(info.result["child"], child);
	EXPECT_EQ(info.result["state"], "completed");
	EXPECT_EQ(info.result["result"], Json({{"sq", 25}}));
	EXPECT_EQ(info.result["error"], Json(nullptr));
	EXPECT_EQ(info.result["timed_out"], false);
	belay::TaskInfo ci = Task(child);
	EXPECT_EQ(ci.state, "completed");
	EXPECT_EQ(ci.parent_task_id.value_or(""), p.task_id);
	EXPECT_EQ(ci.queue, q);
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 2);
}

TEST_F(TaskContextTest, JoinFailedChildReportsStateAndError) {
	std::string q = MakeQueue();
	WorkerThread w(Options(q));
	w.Handle("parent", [&](belay::TaskContext &ctx) -> Json {
		belay::SpawnOptions once;
		once.max_attempts = 1;
		std::string child = ctx.spawn_child("kid", "broken", Json::object(), once);
		belay::JoinResult r = ctx.join("wait-kid", child, 60s);
		return {{"state", r.state}, {"result", r.result}, {"error", r.error}, {"timed_out", r.timed_out}};
	});
	w.Handle("broken", [&](belay::TaskContext &) -> Json { throw std::runtime_error("child broke"); });
	w.Start();
	belay::Spawned p = client->spawn(q, "parent");
	belay::TaskInfo info = WaitTerminal(p.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result["state"], "failed");
	EXPECT_EQ(info.result["timed_out"], false);
	EXPECT_EQ(info.result["result"], Json(nullptr));
	ASSERT_TRUE(info.result["error"].is_object()) << info.result.dump();
	EXPECT_EQ(info.result["error"].value("message", ""), "child broke");
	EXPECT_EQ(info.result["error"].value("kind", ""), "std::runtime_error");
}

TEST_F(TaskContextTest, JoinTimesOut) {
	std::string q = MakeQueue();
	std::string elsewhere = MakeQueue("unserved");
	WorkerThread w(Options(q));
	w.Handle("parent", [&](belay::TaskContext &ctx) -> Json {
		belay::SpawnOptions options;
		options.queue = elsewhere; // no worker serves it: the child never ends
		std::string child = ctx.spawn_child("kid", "never-runs", Json::object(), options);
		belay::JoinResult r = ctx.join("wait-kid", child, 0.5s);
		return {{"child", child}, {"state", r.state}, {"timed_out", r.timed_out}};
	});
	w.Start();
	auto t0 = Steady::now();
	belay::Spawned p = client->spawn(q, "parent");
	belay::TaskInfo info = WaitTerminal(p.task_id);
	double took = SecondsSince(t0);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result["timed_out"], true);
	EXPECT_EQ(info.result["state"], "");
	EXPECT_GE(took, 0.45);
	belay::TaskInfo ci = Task(info.result["child"]);
	EXPECT_EQ(ci.queue, elsewhere);
	EXPECT_EQ(ci.state, "pending");
}

// ctx.heartbeat() keeps a run alive past its lease when the Worker's own heartbeats are
// off, and takes an explicit lease.
TEST_F(TaskContextTest, HeartbeatExtendsTheLease) {
	std::string q = MakeQueue();
	std::atomic<double> remaining{-1};
	std::atomic<int> errors{0};
	belay::WorkerOptions options = Options(q);
	options.lease_seconds = 2;
	options.heartbeat_fraction = 1000; // the Worker's heartbeat thread never beats in time
	WorkerThread w(options);
	w.Handle("beats", [&](belay::TaskContext &ctx) -> Json {
		try {
			for (int i = 0; i < 4; ++i) { // 3.2 s in all, past the 2 s lease
				std::this_thread::sleep_for(800ms);
				ctx.heartbeat();
			}
			ctx.heartbeat(30.0);
			remaining = LeaseRemaining(ctx.task_id());
		} catch (...) {
			++errors;
			throw;
		}
		return {{"ok", true}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "beats", Json::object(), Retries(1));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(errors, 0);
	EXPECT_EQ(CountRuns(s.task_id, "lease_expired"), 0);
	EXPECT_GT(remaining.load(), 20.0) << "heartbeat(30) should set a 30 s lease";
	EXPECT_LE(remaining.load(), 30.5);
}

// The Worker's heartbeat thread keeps a long handler's short lease alive on its own.
TEST_F(TaskContextTest, WorkerHeartbeatsKeepALongHandlerAlive) {
	std::string q = MakeQueue();
	belay::WorkerOptions options = Options(q);
	options.lease_seconds = 1.5;
	WorkerThread w(options);
	w.Handle("long", [&](belay::TaskContext &ctx) -> Json {
		std::this_thread::sleep_for(3500ms);
		return {{"step", ctx.step("after", [] { return 1; })}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "long", Json::object(), Retries(1));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"step", 1}}));
	EXPECT_EQ(CountRuns(s.task_id, "lease_expired"), 0);
	EXPECT_EQ(w.worker().stats().lost, 0u);
}

TEST_F(TaskContextTest, ThrowingHandlerFailsTheRunAndIsRetriedByPolicy) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0};
	WorkerThread w(Options(q));
	w.Handle("flaky", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		if (ctx.attempt() < 3)
			throw FlakyError("flaky attempt " + std::to_string(ctx.attempt()));
		return {{"attempt", ctx.attempt()}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "flaky", Json::object(), Retries(3));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.attempt, 3);
	EXPECT_EQ(info.result, Json({{"attempt", 3}}));
	EXPECT_EQ(calls, 3);
	pqxx::result errors = db->Q("SELECT attempt, error::text FROM belay.runs WHERE task_id = $1::uuid AND "
	                            "outcome = 'failed' ORDER BY attempt",
	                            {s.task_id});
	ASSERT_EQ(errors.size(), 2u);
	for (int i = 0; i < 2; ++i) {
		Json error = Json::parse(errors[i][1].c_str());
		EXPECT_EQ(errors[i][0].as<int>(), i + 1);
		EXPECT_EQ(error.value("kind", ""), "belay_test::FlakyError") << error.dump();
		EXPECT_EQ(error.value("message", ""), "flaky attempt " + std::to_string(i + 1)) << error.dump();
	}
	EXPECT_EQ(w.worker().stats().failed, 2u);
	EXPECT_EQ(w.worker().stats().completed, 1u);
}

TEST_F(TaskContextTest, ThrowingHandlerFailsTheTaskWhenAttemptsAreUsedUp) {
	std::string q = MakeQueue();
	std::atomic<int> calls{0};
	WorkerThread w(Options(q));
	w.Handle("broken", [&](belay::TaskContext &) -> Json {
		++calls;
		throw std::logic_error("always broken");
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "broken", Json::object(), Retries(2));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	std::this_thread::sleep_for(300ms); // a third call would show up here
	w.Stop();
	EXPECT_EQ(info.state, "failed");
	EXPECT_EQ(info.attempt, 2);
	EXPECT_EQ(calls, 2);
	ASSERT_TRUE(info.error.is_object()) << info.error.dump();
	EXPECT_EQ(info.error.value("kind", ""), "std::logic_error");
	EXPECT_EQ(info.error.value("message", ""), "always broken");
	EXPECT_EQ(info.result, Json(nullptr));
	EXPECT_EQ(CountRuns(s.task_id, "failed"), 2);
}

TEST_F(TaskContextTest, UnknownTaskNameFailsWithAClearError) {
	std::string q = MakeQueue();
	WorkerThread w(Options(q));
	w.Handle("known", [](belay::TaskContext &) -> Json { return nullptr; });
	w.Start();
	belay::Spawned s = client->spawn(q, "no-such-task", Json::object(), Retries(2));
	belay::TaskInfo info = WaitTerminal(s.task_id);
	w.Stop();
	EXPECT_EQ(info.state, "failed");
	EXPECT_EQ(info.attempt, 2) << "retried by its policy like any failure";
	ASSERT_TRUE(info.error.is_object()) << info.error.dump();
	EXPECT_EQ(info.error.value("kind", ""), "unknown_task");
	std::string message = info.error.value("message", "");
	EXPECT_NE(message.find("no handler for task name"), std::string::npos) << message;
	EXPECT_NE(message.find("no-such-task"), std::string::npos) << message;
}

// A cancel while the handler runs: its next call that reaches the database throws
// Cancelled (the checkpoint is refused), every call after that throws at once, and the
// Worker does not complete the task with what the handler returns.
TEST_F(TaskContextTest, CancelStopsTheHandlersWrites) {
	std::string q = MakeQueue();
	std::atomic<bool> started{false}, cancelled{false}, finished{false};
	std::atomic<int> after2_runs{0};
	std::mutex mutex;
	std::map<std::string, std::string> thrown;
	WorkerThread w(Options(q)); // 30 s lease: the heartbeat thread does not see the cancel first
	w.Handle("victim", [&](belay::TaskContext &ctx) -> Json {
		ctx.step("before", [] { return 1; });
		started = true;
		Eventually([&] { return cancelled.load(); }, 10s, 5ms);
		std::map<std::string, std::string> got;
		got["step"] = ThrownBy([&] { ctx.step("after", [] { return 2; }); });
		got["step2"] = ThrownBy([&] { ctx.step("after2", [&] { return ++after2_runs; }); });
		got["heartbeat"] = ThrownBy([&] { ctx.heartbeat(); });
		got["emit"] = ThrownBy([&] { ctx.emit_event("from-a-cancelled-task"); });
		got["sleep"] = ThrownBy([&] { ctx.sleep_for("zz", 1s); });
		got["spawn_child"] = ThrownBy([&] { ctx.spawn_child("kid", "x"); });
		{
			std::lock_guard<std::mutex> lock(mutex);
			thrown = got;
		}
		finished = true;
		return {{"ignored", true}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "victim");
	ASSERT_TRUE(Eventually([&] { return started.load(); }, 10s));
	EXPECT_EQ(client->cancel(s.task_id), 1);
	cancelled = true;
	ASSERT_TRUE(Eventually([&] { return finished.load(); }, 10s));
	ASSERT_TRUE(Eventually([&] { return w.worker().stats().lost == 1; }, 5s));
	w.Stop();
	for (const char *call : {"step", "step2", "heartbeat", "emit", "sleep", "spawn_child"})
		EXPECT_EQ(thrown[call], "Cancelled") << "ctx call " << call << " after the cancel";
	EXPECT_EQ(after2_runs, 0) << "once the context knows, a step's fn does not run";
	belay::TaskInfo info = Task(s.task_id);
	EXPECT_EQ(info.state, "cancelled");
	EXPECT_EQ(info.result, Json(nullptr));
	EXPECT_TRUE(Checkpoint(s.task_id, "before").has_value());
	EXPECT_FALSE(Checkpoint(s.task_id, "after").has_value());
	EXPECT_FALSE(Checkpoint(s.task_id, "after2").has_value());
	EXPECT_FALSE(Checkpoint(s.task_id, "zz").has_value());
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 1) << "no child was spawned";
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.events WHERE queue = $1", {q}), 0) << "no event was emitted";
	EXPECT_EQ(w.worker().stats().completed, 0u);
}

// The Worker's heartbeat thread learns of the cancel and marks the context: the handler's
// next step throws Cancelled without running its fn.
TEST_F(TaskContextTest, CancelSeenByTheHeartbeatThread) {
	std::string q = MakeQueue();
	std::atomic<bool> started{false}, finished{false};
	std::atomic<int> status{-1}, after_runs{0};
	std::string thrown;
	belay::WorkerOptions options = Options(q);
	options.lease_seconds = 1.5; // heartbeats every 0.5 s
	WorkerThread w(options);
	w.Handle("victim", [&](belay::TaskContext &ctx) -> Json {
		started = true;
		Eventually([&] { return ctx.status().load() != static_cast<int>(belay::RunStatus::Live); }, 15s, 10ms);
		status = ctx.status().load();
		thrown = ThrownBy([&] { ctx.step("after", [&] { return ++after_runs; }); });
		finished = true;
		return {{"ignored", true}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "victim");
	ASSERT_TRUE(Eventually([&] { return started.load(); }, 10s));
	EXPECT_EQ(client->cancel(s.task_id), 1);
	ASSERT_TRUE(Eventually([&] { return finished.load(); }, 20s));
	w.Stop();
	EXPECT_EQ(status, static_cast<int>(belay::RunStatus::Cancelled));
	EXPECT_EQ(thrown, "Cancelled");
	EXPECT_EQ(after_runs, 0);
	EXPECT_FALSE(Checkpoint(s.task_id, "after").has_value());
	EXPECT_EQ(Task(s.task_id).state, "cancelled");
}

// Lease loss: a short lease, no heartbeats, a handler that sleeps past it. The background
// worker reclaims the run; the handler's next call throws LeaseLost and writes nothing;
// the retry replays the step that finished before the loss.
TEST_F(TaskContextTest, LeaseLossStopsTheHandlersWrites) {
	std::string q = MakeQueue();
	std::atomic<int> before_runs{0}, after_runs{0}, calls{0};
	std::atomic<bool> reclaimed{false};
	std::mutex mutex;
	std::map<std::string, std::string> thrown;
	belay::WorkerOptions options = Options(q);
	options.lease_seconds = 1;
	options.heartbeat_fraction = 1e6; // no heartbeats
	WorkerThread w(options);
	w.Handle("sleepy", [&](belay::TaskContext &ctx) -> Json {
		++calls;
		ctx.step("before", [&] { return ++before_runs; });
		if (ctx.attempt() == 1) {
			// Sleep past the lease until the background worker has reclaimed the run.
			reclaimed = Eventually([&] { return LiveRun(ctx.task_id()) != ctx.run_id(); }, 15s, 50ms);
			std::map<std::string, std::string> got;
			got["step"] = ThrownBy([&] { ctx.step("after", [&] {
				++after_runs;
				return ctx.attempt();
			}); });
			got["heartbeat"] = ThrownBy([&] { ctx.heartbeat(); });
			got["step2"] = ThrownBy([&] { ctx.step("after2", [] { return 1; }); });
			std::lock_guard<std::mutex> lock(mutex);
			thrown = got;
			return {{"stale", true}};
		}
		int after = ctx.step("after", [&] { return ctx.attempt(); });
		return {{"attempt", ctx.attempt()}, {"after", after}};
	});
	w.Start();
	belay::Spawned s = client->spawn(q, "sleepy", Json::object(), Retries(2));
	belay::TaskInfo info = WaitTerminal(s.task_id, 30s);
	ASSERT_TRUE(Eventually([&] { return w.worker().stats().lost >= 1; }, 5s));
	w.Stop();
	EXPECT_TRUE(reclaimed) << "the background worker did not reclaim the expired lease";
	EXPECT_EQ(thrown["step"], "LeaseLost");
	EXPECT_EQ(thrown["heartbeat"], "LeaseLost");
	EXPECT_EQ(thrown["step2"], "LeaseLost");
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.attempt, 2);
	EXPECT_EQ(info.result, Json({{"attempt", 2}, {"after", 2}}));
	EXPECT_EQ(calls, 2);
	EXPECT_EQ(before_runs, 1) << "the step finished before the loss is replayed, not redone";
	EXPECT_EQ(Checkpoint(s.task_id, "after"), Json(2)) << "the stale run's checkpoint must have been refused";
	EXPECT_FALSE(Checkpoint(s.task_id, "after2").has_value());
	pqxx::result lost = db->Q(
	    "SELECT error->>'kind' FROM belay.runs WHERE task_id = $1::uuid AND outcome = 'lease_expired'", {s.task_id});
	ASSERT_EQ(lost.size(), 1u);
	EXPECT_STREQ(lost[0][0].c_str(), "lease_expired");
	EXPECT_EQ(CountRuns(s.task_id, "completed"), 1);
}

} // namespace belay_test
