// belay::Worker: runs handlers for the tasks of one queue, N at a time.
#pragma once

#include "belay/client/task_context.hpp"
#include "belay/client/types.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace belay {

std::string DefaultConnectionString();

struct WorkerOptions {
	std::string conninfo = DefaultConnectionString();
	std::string queue = "default";
	std::string worker_id;                              // default: host:pid
	int concurrency = 4;                                // handlers running at once (threads)
	int prefetch = 0;                                   // tasks claimed ahead of free threads
	double lease_seconds = 60;                          // each claim's lease
	double heartbeat_fraction = 1.0 / 3;                // heartbeat every lease × this
	std::chrono::milliseconds poll_interval{1000};      // claim at least this often without a NOTIFY
	std::chrono::milliseconds shutdown_timeout{30000};  // how long stop() lets handlers finish
	std::chrono::milliseconds reconnect_delay{500};     // wait before reconnecting
	bool handle_signals = true;                         // SIGINT/SIGTERM call stop()
};

// Completions are batched: a completer thread sends the results of finished handlers in
// one belay.complete_many() call per batch (it does not wait: a batch is whatever
// finished since the last call). A larger prefetch lets short tasks drain faster, at the
// cost of holding leases on tasks other workers could have started.
//
// A handler returns the task's result (any JSON; null for none). Throwing fails the run
// with the exception's type and message; the task is retried by its policy.
using Handler = std::function<Json(TaskContext &)>;

struct WorkerStats {
	uint64_t claimed = 0;
	uint64_t completed = 0;
	uint64_t failed = 0;
	uint64_t suspended = 0;
	uint64_t lost = 0; // lease lost or task cancelled while running
};

class Worker {
public:
	explicit Worker(WorkerOptions options = {});
	~Worker();
	Worker(const Worker &) = delete;
	Worker &operator=(const Worker &) = delete;

	void handle(const std::string &task_name, Handler handler);
	// Claims and runs tasks until stop() (or SIGINT/SIGTERM); then stops claiming, lets
	// running handlers finish up to shutdown_timeout, and returns.
	void run();
	// Safe from any thread and from a signal handler.
	void stop();
	WorkerStats stats() const;

	struct Impl; // opaque; public so the signal handler can reach it

private:
	std::unique_ptr<Impl> impl_;
};

} // namespace belay
