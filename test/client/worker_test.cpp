// belay::Worker: concurrency, LISTEN wake-up, graceful stop (stop() and SIGTERM), replay
// after a SIGKILL, prefetching, and a 40,000-task run with every task completed exactly once.
#include "common.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sys/wait.h>
#include <unordered_map>
#include <unistd.h>

namespace belay_test {

class WorkerTest : public BelayTest {};

TEST_F(WorkerTest, RunsConcurrencyHandlersAtOnce) {
	std::string q = MakeQueue();
	std::atomic<int> running{0}, peak{0};
	std::atomic<bool> all_in{false};
	belay::WorkerOptions options = Options(q);
	options.concurrency = 4;
	WorkerThread w(options);
	w.Handle("together", [&](belay::TaskContext &) -> Json {
		int now = ++running;
		int seen = peak.load();
		while (now > seen && !peak.compare_exchange_weak(seen, now)) {
		}
		// Every handler waits until all four run at once (or gives up after 10 s).
		all_in = Eventually([&] { return peak.load() >= 4; }, 10s, 5ms) || all_in;
		--running;
		return nullptr;
	});
	std::vector<belay::Spawned> tasks = client->spawn_many(q, "together", std::vector<Json>(4, Json::object()));
	w.Start();
	for (const auto &t : tasks)
		EXPECT_EQ(WaitTerminal(t.task_id).state, "completed");
	w.Stop();
	EXPECT_EQ(peak, 4);
	EXPECT_TRUE(all_in);
	EXPECT_EQ(w.worker().stats().claimed, 4u);
	EXPECT_EQ(w.worker().stats().completed, 4u);
}

// An idle worker claims new work on the NOTIFY, long before its poll interval.
TEST_F(WorkerTest, ListenWakesAnIdleWorker) {
	std::string q = MakeQueue();
	belay::WorkerOptions options = Options(q);
	options.poll_interval = 20s;
	WorkerThread w(options);
	w.Handle("t", [](belay::TaskContext &) -> Json { return 1; });
	w.Start();
	for (int i = 0; i < 3; ++i) {
		std::this_thread::sleep_for(300ms); // the worker is idle, waiting
		auto t0 = Steady::now();
		belay::Spawned s = client->spawn(q, "t");
		EXPECT_EQ(WaitTerminal(s.task_id, 15s).state, "completed");
		double took = SecondsSince(t0);
		EXPECT_LT(took, 5.0) << "the idle worker did not wake on the NOTIFY (poll interval is 20 s)";
	}
	double stop = w.Stop();
	EXPECT_LT(stop, 5.0) << "stop() must wake the dispatcher, not wait for the poll interval";
}

// stop() while handlers run: they finish and complete; nothing new is claimed.
TEST_F(WorkerTest, StopLetsRunningHandlersFinishAndClaimsNothingNew) {
	std::string q = MakeQueue();
	std::atomic<int> started{0};
	std::atomic<bool> release{false};
	WorkerThread w(Options(q)); // concurrency 2
	w.Handle("hold", [&](belay::TaskContext &ctx) -> Json {
		++started;
		Eventually([&] { return release.load(); }, 15s, 5ms);
		ctx.step("done", [] { return true; });
		return {{"finished", true}};
	});
	std::vector<belay::Spawned> first = client->spawn_many(q, "hold", std::vector<Json>(2, Json::object()));
	w.Start();
	ASSERT_TRUE(Eventually([&] { return started.load() == 2; }, 10s));
	w.worker().stop();
	std::vector<belay::Spawned> later = client->spawn_many(q, "hold", std::vector<Json>(3, Json::object()));
	std::this_thread::sleep_for(300ms);
	release = true;
	double took = w.Stop();
	EXPECT_LT(took, 10.0);
	EXPECT_EQ(started, 2) << "a handler started after stop()";
	for (const auto &t : first) {
		belay::TaskInfo info = Task(t.task_id);
		EXPECT_EQ(info.state, "completed");
		EXPECT_EQ(info.result, Json({{"finished", true}}));
	}
	for (const auto &t : later) {
		EXPECT_EQ(Task(t.task_id).state, "pending") << "claimed after stop()";
		EXPECT_EQ(db->Count("SELECT count(*) FROM belay.runs WHERE task_id = $1::uuid", {t.task_id}), 0);
	}
	belay::WorkerStats stats = w.worker().stats();
	EXPECT_EQ(stats.claimed, 2u);
	EXPECT_EQ(stats.completed, 2u);
	EXPECT_TRUE(w.run_error().empty()) << w.run_error();
}

// A handler still running at shutdown_timeout can write nothing more: its next call throws
// LeaseLost and the task is left to its lease (not completed).
TEST_F(WorkerTest, HandlerPastTheShutdownTimeoutCanWriteNothing) {
	std::string q = MakeQueue();
	std::atomic<bool> started{false};
	std::string thrown;
	belay::WorkerOptions options = Options(q);
	options.shutdown_timeout = 300ms;
	WorkerThread w(options);
	w.Handle("slow", [&](belay::TaskContext &ctx) -> Json {
		started = true;
		std::this_thread::sleep_for(1500ms);
		try {
			ctx.step("late", [] { return 1; });
			thrown = "none";
		} catch (const belay::LeaseLost &) {
			thrown = "LeaseLost";
		}
		return {{"late", true}};
	});
	belay::Spawned s = client->spawn(q, "slow");
	w.Start();
	ASSERT_TRUE(Eventually([&] { return started.load(); }, 10s));
	w.Stop();
	EXPECT_EQ(thrown, "LeaseLost");
	EXPECT_FALSE(Checkpoint(s.task_id, "late").has_value());
	belay::TaskInfo info = Task(s.task_id);
	EXPECT_EQ(info.state, "running") << "left to its lease, not completed";
	EXPECT_EQ(info.result, Json(nullptr));
	EXPECT_EQ(w.worker().stats().completed, 0u);
	EXPECT_EQ(w.worker().stats().lost, 1u);
}

// SIGTERM to a worker process: it stops claiming, its running task completes, it exits 0.
TEST_F(WorkerTest, SigtermStopsAWorkerProcessGracefully) {
	std::string q = MakeQueue();
	const char *tmp = std::getenv("TMPDIR");
	std::string release = std::string(tmp ? tmp : "/tmp") + "/" + q + ".release";
	std::remove(release.c_str());
	belay::Spawned s = client->spawn(q, "graceful");
	pid_t child = StartChild("graceful", q);
	ASSERT_GT(child, 0);
	bool started = Eventually([&] { return CountEffects(*db, s.task_id, "started") == 1; }, 15s);
	if (!started) {
		kill(child, SIGKILL);
		WaitChild(child, 5s);
		FAIL() << "the child worker did not start the task";
	}
	ASSERT_EQ(kill(child, SIGTERM), 0);
	std::this_thread::sleep_for(300ms); // let the signal land before more work arrives
	std::vector<belay::Spawned> later = client->spawn_many(q, "graceful", std::vector<Json>(2, Json::object()));
	std::this_thread::sleep_for(300ms);
	EXPECT_EQ(Task(s.task_id).state, "running") << "the handler is still held";
	{
		std::ofstream(release) << "go\n";
	}
	int status = WaitChild(child, 20s);
	std::remove(release.c_str());
	ASSERT_NE(status, -1) << "the child did not exit within 20 s of SIGTERM";
	EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status;
	EXPECT_EQ(WEXITSTATUS(status), 0);
	belay::TaskInfo info = Task(s.task_id);
	EXPECT_EQ(info.state, "completed");
	EXPECT_EQ(info.result, Json({{"done", true}}));
	EXPECT_EQ(CountEffects(*db, s.task_id, "finish"), 1);
	for (const auto &t : later) {
		EXPECT_EQ(Task(t.task_id).state, "pending") << "claimed after SIGTERM";
		EXPECT_EQ(CountEffects(*db, t.task_id, "started"), 0);
	}
}

// Replay after a crash: a worker process runs steps a and b (each with a side effect) and
// blocks; it is killed with SIGKILL; an in-process worker takes over after the 2 s lease
// expires, replays a and b from their checkpoints and runs c. Every finished step's side
// effect happened exactly once, and each task completed once.
TEST_F(WorkerTest, ReplayAfterSigkillRunsFinishedStepsOnce) {
	std::string q = MakeQueue();
	const int kTasks = 3;
	belay::SpawnOptions options;
	options.max_attempts = 5;
	options.retry = belay::RetryOptions{};
	options.retry->kind = "fixed";
	options.retry->base_seconds = 0.1;
	std::vector<belay::Spawned> tasks;
	for (int i = 0; i < kTasks; ++i)
		tasks.push_back(client->spawn(q, "crashy", {{"i", i}}, options));

	pid_t child = StartChild("crash", q);
	ASSERT_GT(child, 0);
	bool blocked = Eventually(
	    [&] {
		    for (const auto &t : tasks)
			    if (CountEffects(*db, t.task_id, "blocked") == 0)
				    return false;
		    return true;
	    },
	    20s);
	if (!blocked) {
		kill(child, SIGKILL);
		WaitChild(child, 5s);
		FAIL() << "the child worker did not reach the blocking point";
	}
	ASSERT_EQ(kill(child, SIGKILL), 0);
	int status = WaitChild(child, 10s);
	ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
	auto killed_at = Steady::now();
	for (const auto &t : tasks) {
		EXPECT_TRUE(Checkpoint(t.task_id, "a").has_value());
		EXPECT_TRUE(Checkpoint(t.task_id, "b").has_value());
	}

	std::atomic<int> calls{0};
	belay::WorkerOptions wo = Options(q);
	wo.lease_seconds = 2;
	wo.concurrency = 4;
	WorkerThread w(wo);
	w.Handle("crashy", [&](belay::TaskContext &ctx) {
		++calls;
		return CrashyHandler(ctx, false);
	});
	w.Start();
	std::vector<belay::TaskInfo> infos;
	for (const auto &t : tasks)
		infos.push_back(WaitTerminal(t.task_id, 30s));
	double took = SecondsSince(killed_at);
	w.Stop();
	std::cout << "tasks taken over and completed " << took << " s after the SIGKILL\n";
	for (size_t i = 0; i < tasks.size(); ++i) {
		const std::string &id = tasks[i].task_id;
		EXPECT_EQ(infos[i].state, "completed");
		EXPECT_EQ(infos[i].attempt, 2) << "the lost run counts as a failed attempt";
		EXPECT_EQ(infos[i].result, Json({{"a", 1}, {"b", "two"}, {"c", 3.5}, {"attempt", 2}}));
		EXPECT_EQ(CountEffects(*db, id, "a"), 1) << "step a ran again after the crash";
		EXPECT_EQ(CountEffects(*db, id, "b"), 1) << "step b ran again after the crash";
		EXPECT_EQ(CountEffects(*db, id, "blocked"), 1);
		EXPECT_EQ(CountEffects(*db, id, "c"), 1);
		EXPECT_EQ(CountRuns(id, "lease_expired"), 1);
		EXPECT_EQ(CountRuns(id, "completed"), 1);
	}
	EXPECT_EQ(calls, kTasks) << "each task ran once in the new worker";
	EXPECT_LT(took, 30.0);
}

// 8 threads spawn 5,000 tasks each with spawn_many while a worker runs them; every task
// is completed exactly once, within 120 s.
// With a prefetch the dispatcher tops up in large bites while claimed work is queued: it
// must still keep every handler slot busy without waiting for its poll interval, never run
// more than `concurrency` handlers, and run each task once.
TEST_F(WorkerTest, PrefetchingWorkerKeepsItsSlotsBusy) {
	std::string q = MakeQueue();
	std::atomic<int> running{0}, peak{0}, runs{0};
	belay::WorkerOptions options = Options(q);
	options.concurrency = 4;
	options.prefetch = 2;
	options.poll_interval = 20s;
	WorkerThread w(options);
	w.Handle("short", [&](belay::TaskContext &) -> Json {
		int now = ++running;
		int seen = peak.load();
		while (now > seen && !peak.compare_exchange_weak(seen, now)) {
		}
		std::this_thread::sleep_for(50ms);
		--running;
		++runs;
		return nullptr;
	});
	std::vector<belay::Spawned> tasks = client->spawn_many(q, "short", std::vector<Json>(40, Json::object()));
	auto t0 = Steady::now();
	w.Start();
	for (const auto &t : tasks)
		EXPECT_EQ(WaitTerminal(t.task_id, 30s).state, "completed");
	double took = SecondsSince(t0);
	w.Stop();
	// 40 tasks of 50 ms on 4 slots take about 0.5 s; a slot left idle until the 20 s poll
	// would show here.
	EXPECT_LT(took, 10.0) << "a free slot waited for the poll interval";
	EXPECT_LE(peak, 4);
	EXPECT_EQ(runs, 40);
	EXPECT_EQ(w.worker().stats().claimed, 40u);
	EXPECT_EQ(w.worker().stats().completed, 40u);
}

TEST_F(WorkerTest, FortyThousandTasksCompleteExactlyOnce) {
	std::string q = MakeQueue();
	const int kThreads = 8, kPerThread = 5000, kTotal = kThreads * kPerThread;
	std::mutex mutex;
	std::unordered_map<std::string, int> handled;
	handled.reserve(kTotal * 2);
	std::atomic<long> duplicates{0};

	auto t0 = Steady::now();
	std::vector<std::unique_ptr<WorkerThread>> workers;
	for (int i = 0; i < 2; ++i) {
		belay::WorkerOptions options = Options(q);
		options.worker_id += "-" + std::to_string(i);
		options.concurrency = 4;
		workers.push_back(std::make_unique<WorkerThread>(options));
		workers.back()->Handle("noop", [&](belay::TaskContext &ctx) -> Json {
			std::lock_guard<std::mutex> lock(mutex);
			if (++handled[ctx.task_id()] > 1)
				++duplicates;
			return nullptr;
		});
		workers.back()->Start();
	}

	std::vector<std::vector<belay::Spawned>> spawned(kThreads);
	std::vector<std::string> errors(kThreads);
	std::vector<std::thread> producers;
	for (int t = 0; t < kThreads; ++t)
		producers.emplace_back([&, t] {
			try {
				belay::Client producer;
				std::vector<Json> params;
				params.reserve(kPerThread);
				for (int i = 0; i < kPerThread; ++i)
					params.push_back({{"t", t}, {"i", i}});
				spawned[t] = producer.spawn_many(q, "noop", params);
			} catch (const std::exception &e) {
				errors[t] = e.what();
			}
		});
	for (auto &p : producers)
		p.join();
	double spawn_took = SecondsSince(t0);
	std::set<std::string> ids;
	for (int t = 0; t < kThreads; ++t) {
		EXPECT_TRUE(errors[t].empty()) << "producer " << t << ": " << errors[t];
		EXPECT_EQ(spawned[t].size(), static_cast<size_t>(kPerThread));
		for (const auto &s : spawned[t])
			ids.insert(s.task_id);
	}
	EXPECT_EQ(ids.size(), static_cast<size_t>(kTotal)) << "task ids must be distinct";

	bool done = Eventually(
	    [&] {
		    std::lock_guard<std::mutex> lock(mutex);
		    return handled.size() >= static_cast<size_t>(kTotal);
	    },
	    std::chrono::milliseconds(120000) - std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0),
	    100ms);
	// The last completions commit just after their handlers return.
	Eventually([&] { return db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1 AND state <> 'completed'",
	                                  {q}) == 0; },
	           10s, 50ms);
	double took = SecondsSince(t0);
	uint64_t claimed = 0, completed = 0;
	for (auto &w : workers) {
		w->Stop();
		claimed += w->worker().stats().claimed;
		completed += w->worker().stats().completed;
	}
	std::cout << "40,000 tasks: spawned in " << spawn_took << " s, all completed " << took << " s after the start ("
	          << static_cast<int>(kTotal / took) << " tasks/s)\n";
	EXPECT_TRUE(done) << "only " << handled.size() << " of " << kTotal << " tasks handled within 120 s";
	EXPECT_LT(took, 130.0);
	EXPECT_EQ(duplicates, 0);
	EXPECT_EQ(handled.size(), static_cast<size_t>(kTotal));
	for (const auto &[id, n] : handled)
		if (!ids.count(id)) {
			ADD_FAILURE() << "handled a task that was not spawned here: " << id;
			break;
		}
	pqxx::result runs = db->Q("SELECT count(*), count(DISTINCT r.task_id) FROM belay.runs r JOIN belay.tasks t "
	                          "USING (task_id) WHERE t.queue = $1 AND r.outcome = 'completed'",
	                          {q});
	EXPECT_EQ(runs[0][0].as<long>(), kTotal);
	EXPECT_EQ(runs[0][1].as<long>(), kTotal);
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.runs r JOIN belay.tasks t USING (task_id) "
	                    "WHERE t.queue = $1 AND r.outcome <> 'completed'",
	                    {q}),
	          0);
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1 AND state = 'completed'", {q}), kTotal);
	EXPECT_EQ(claimed, static_cast<uint64_t>(kTotal));
	EXPECT_EQ(completed, static_cast<uint64_t>(kTotal));
}

} // namespace belay_test
