// Reconnect after the server restarts mid-stream: the Worker's threads and the Client
// reconnect, and every task is completed exactly once.
//
// Needs BELAY_CLUSTER_DIR (scripts/cluster.sh's cluster); skipped without it.
#include "common.hpp"

#include <cstdlib>
#include <set>
#include <unordered_map>

namespace belay_test {

class RestartTest : public BelayTest {};

namespace {
std::string RepositoryRoot() {
	if (const char *root = std::getenv("BELAY_ROOT"))
		return root;
	std::string file = __FILE__; // .../test/client/restart_test.cpp
	auto at = file.rfind("/test/client/");
	return at == std::string::npos ? "/work/main" : file.substr(0, at);
}
} // namespace

TEST_F(RestartTest, WorkerAndClientReconnectAfterAFastRestart) {
	const char *cluster = std::getenv("BELAY_CLUSTER_DIR");
	if (!cluster || !*cluster)
		GTEST_SKIP() << "BELAY_CLUSTER_DIR is not set: no cluster to restart";
	std::string q = MakeQueue();
	const int kTasks = 400;

	std::mutex mutex;
	std::unordered_map<std::string, int> handled;
	belay::WorkerOptions options = Options(q);
	options.concurrency = 4;
	options.lease_seconds = 5;
	options.reconnect_delay = 200ms;
	WorkerThread w(options);
	w.Handle("work", [&](belay::TaskContext &ctx) -> Json {
		int value = ctx.step("work", [] {
			std::this_thread::sleep_for(10ms);
			return 1;
		});
		{
			std::lock_guard<std::mutex> lock(mutex);
			++handled[ctx.task_id()];
		}
		return {{"value", value}};
	});
	auto handled_count = [&] {
		std::lock_guard<std::mutex> lock(mutex);
		return handled.size();
	};

	belay::SpawnOptions spawn_options;
	spawn_options.max_attempts = 10;
	spawn_options.retry = belay::RetryOptions{};
	spawn_options.retry->kind = "fixed";
	spawn_options.retry->base_seconds = 0.2;
	std::vector<belay::Spawned> tasks =
	    client->spawn_many(q, "work", std::vector<Json>(kTasks, Json::object()), spawn_options);
	ASSERT_EQ(tasks.size(), static_cast<size_t>(kTasks));
	w.Start();
	ASSERT_TRUE(Eventually([&] { return handled_count() >= 60; }, 30s)) << "the worker did not get going";

	std::string command = RepositoryRoot() + "/scripts/cluster.sh restart '" + cluster + "' fast";
	auto t0 = Steady::now();
	int rc = std::system(command.c_str());
	double restart_took = SecondsSince(t0);
	ASSERT_EQ(rc, 0) << command;
	size_t at_restart = handled_count();
	std::cout << "restarted the server in " << restart_took << " s with " << at_restart << " of " << kTasks
	          << " tasks handled\n";
	EXPECT_LT(at_restart, static_cast<size_t>(kTasks)) << "the restart did not happen mid-stream";

	// The Client's connection broke: its next call may throw ConnectionError once, then it
	// reconnects.
	int connection_errors = 0;
	std::optional<belay::TaskInfo> info;
	for (int i = 0; i < 3 && !info; ++i) {
		try {
			info = client->task(tasks[0].task_id);
		} catch (const belay::ConnectionError &e) {
			++connection_errors;
			std::cout << "client call after the restart: ConnectionError: " << e.what() << "\n";
		}
	}
	EXPECT_LE(connection_errors, 1) << "the Client should reconnect on the call after a failed one";
	ASSERT_TRUE(info.has_value());
	// And it spawns again.
	belay::Spawned after = RetryOnConnectionError([&] { return client->spawn(q, "work", Json::object(), spawn_options); });
	tasks.push_back(after);

	bool all = Eventually(
	    [&] {
		    return db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1 AND state = 'completed'", {q}) ==
		           static_cast<long>(tasks.size());
	    },
	    60s, 100ms);
	double took = SecondsSince(t0);
	w.Stop();
	std::cout << "all " << tasks.size() << " tasks completed " << took << " s after the restart began\n";
	EXPECT_TRUE(all) << db->Text("SELECT string_agg(state || ': ' || n, ', ') FROM (SELECT state, count(*) n FROM "
	                             "belay.tasks WHERE queue = $1 GROUP BY state) s",
	                             {q});
	EXPECT_TRUE(w.run_error().empty()) << w.run_error();
	pqxx::result runs = db->Q("SELECT count(*), count(DISTINCT r.task_id) FROM belay.runs r JOIN belay.tasks t "
	                          "USING (task_id) WHERE t.queue = $1 AND r.outcome = 'completed'",
	                          {q});
	EXPECT_EQ(runs[0][0].as<long>(), static_cast<long>(tasks.size())) << "a task completed more than once";
	EXPECT_EQ(runs[0][1].as<long>(), static_cast<long>(tasks.size()));
	std::set<std::string> ids;
	for (const auto &t : tasks)
		ids.insert(t.task_id);
	std::lock_guard<std::mutex> lock(mutex);
	EXPECT_EQ(handled.size(), tasks.size());
	int again = 0;
	for (const auto &[id, n] : handled) {
		EXPECT_TRUE(ids.count(id)) << id;
		again += n - 1;
	}
	std::cout << again << " handler(s) ran again (their completion was lost in the restart)\n";
	EXPECT_LE(again, 2 * options.concurrency) << "only tasks in flight at the restart may run again";
}

} // namespace belay_test
