// Shared helpers of belay's client tests: a fixture that owns fresh queues, a direct SQL
// connection, a Worker running on a thread, polling waits and child worker processes.
#pragma once

#include <belay/client.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace belay_test {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using belay::Json;

// The table in which handlers record their side effects (one row per effect).
constexpr const char *kEffects = "belay_client_test_effects";

double SecondsSince(Steady::time_point start);

// Runs fn, retrying while it throws belay::ConnectionError (after a server restart every
// connection breaks once). Gives up after `attempts` tries.
template <typename F>
auto RetryOnConnectionError(F &&fn, int attempts = 20) -> decltype(fn()) {
	for (int i = 1;; ++i) {
		try {
			return fn();
		} catch (const belay::ConnectionError &) {
			if (i >= attempts)
				throw;
			std::this_thread::sleep_for(200ms);
		}
	}
}

// A connection of its own for the test's SQL; reconnects after a break.
class Db {
public:
	Db();
	// Runs one statement in its own transaction; $1.. are bound to args (strings).
	pqxx::result Q(const std::string &sql, const std::vector<std::optional<std::string>> &args = {});
	long Count(const std::string &sql, const std::vector<std::optional<std::string>> &args = {});
	std::string Text(const std::string &sql, const std::vector<std::optional<std::string>> &args = {});
	pqxx::connection &connection();

private:
	std::unique_ptr<pqxx::connection> connection_;
};

// Records a side effect in kEffects on a connection of its own (any thread).
void RecordEffect(const std::string &task_id, const std::string &effect);
long CountEffects(Db &db, const std::string &task_id, const std::string &effect);

// Polls until pred() is true or the timeout passes; returns pred()'s last value.
bool Eventually(const std::function<bool()> &pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = 20ms);

// A Worker running run() on a thread; stopped and joined on Stop() or destruction.
class WorkerThread {
public:
	explicit WorkerThread(belay::WorkerOptions options) : worker_(std::move(options)) {}
	~WorkerThread() { Stop(); }
	void Handle(const std::string &name, belay::Handler handler) { worker_.handle(name, std::move(handler)); }
	void Start();
	// stop() and wait for run() to return; the seconds run() took to return.
	double Stop();
	belay::Worker &worker() { return worker_; }
	const std::string &run_error() const { return run_error_; }

private:
	belay::Worker worker_;
	std::thread thread_;
	std::string run_error_;
};

// Base fixture: a Client, a Db, and queues named after the test that exist for its
// duration (created fresh, dropped at the end).
class BelayTest : public ::testing::Test {
protected:
	void SetUp() override;
	void TearDown() override;

	// The queue named after the test with a suffix; created now.
	std::string MakeQueue(const std::string &suffix = "", const Json &policy = Json::object());
	// Options for a worker of `queue` suited to tests: fast polls, no signal handling.
	belay::WorkerOptions Options(const std::string &queue) const;
	// Polls client.task until the task is terminal; fails the test on timeout.
	belay::TaskInfo WaitTerminal(const std::string &task_id, std::chrono::milliseconds timeout = 20s);
	// Polls until the task is in `state`; false on timeout.
	bool WaitState(const std::string &task_id, const std::string &state, std::chrono::milliseconds timeout = 20s);
	belay::TaskInfo Task(const std::string &task_id);
	long CountRuns(const std::string &task_id, const std::string &outcome);
	std::optional<Json> Checkpoint(const std::string &task_id, const std::string &step);

	std::unique_ptr<belay::Client> client;
	std::unique_ptr<Db> db;
	std::vector<std::string> queues;
};

// Child worker processes: this test binary re-executed as `client_tests --child MODE QUEUE`.
pid_t StartChild(const std::string &mode, const std::string &queue);
int ChildMain(int argc, char **argv); // called by main for --child
// Waits for the child to exit (up to timeout); returns its wait status, or -1 on timeout
// (after which the child is killed).
int WaitChild(pid_t pid, std::chrono::milliseconds timeout);

// The handlers the child modes run (so that in-process workers run the same code).
// "crashy": steps a and b with side effects, then (in a child process) blocks for ever;
// in-process it goes on with step c and completes.
Json CrashyHandler(belay::TaskContext &ctx, bool block_after_b);
// "graceful": records "started", waits for the release file (or 20 s), then step "finish".
Json GracefulHandler(belay::TaskContext &ctx, const std::string &release_file);

} // namespace belay_test
