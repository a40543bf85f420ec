// Figure 4: drain a queue filled up front, tasks per second.
//
//   drain --mode belay --queue drain --tasks 200000 --concurrency 8 --max-seconds 60
//       belay::Worker with a no-op handler: claims for its free slots, completes each task
//       in its own transaction (what a user of the client gets).
//   drain --mode raw --queue drain --tasks 200000 --concurrency 8 --batch 10 --max-seconds 60
//       the baseline: N threads on bench.raw_tasks, each looping
//         UPDATE ... WHERE task_id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT k) RETURNING
//         UPDATE ... SET state = 'completed' WHERE task_id = ANY($1)
//       one transaction each.
//
// Stops when every task is done or at --max-seconds, whichever is first. The clock starts
// before the first connection is opened, in both modes. Prints completed=, seconds=, rate=;
// for the Worker also claimed_at_stop= (claimed when the clock stopped) and stop_seconds=
// (how long Worker::stop() and run() took to return after it).
#include "common.hpp"

#include <belay/client.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace {

int DrainBelay(const bench::Args &args) {
	const long tasks = args.Int("tasks", 200000);
	const double max_seconds = args.Num("max-seconds", 60);
	belay::WorkerOptions options;
	options.queue = args.Str("queue", "drain");
	options.concurrency = static_cast<int>(args.Int("concurrency", 8));
	options.prefetch = static_cast<int>(args.Int("prefetch", 0));
	options.worker_id = "bench-drain";
	options.handle_signals = false;
	belay::Worker worker(options);
	worker.handle("noop", [](belay::TaskContext &) { return belay::Json(); });

	auto start = bench::Steady::now();
	std::thread runner([&] { worker.run(); });
	uint64_t done = 0, claimed = 0;
	double seconds = 0;
	for (;;) {
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
		belay::WorkerStats now = worker.stats();
		done = now.completed;
		claimed = now.claimed;
		seconds = bench::SecondsSince(start);
		if (static_cast<long>(done) >= tasks || seconds >= max_seconds)
			break;
	}
	auto stopping = bench::Steady::now();
	worker.stop();
	runner.join();
	belay::WorkerStats stats = worker.stats();
	bench::Put("completed", done);
	bench::Put("seconds", seconds);
	bench::Put("rate", done / seconds);
	bench::Put("all_done", static_cast<long>(done) >= tasks ? 1 : 0);
	// Claimed but not completed when the clock stopped: a Worker holds at most
	// concurrency + prefetch tasks; more means it claims ahead of its completions.
	bench::Put("claimed_at_stop", claimed);
	bench::Put("stop_seconds", bench::SecondsSince(stopping));
	bench::Put("claimed", stats.claimed);
	bench::Put("failed", stats.failed);
	bench::Put("lost", stats.lost);
	if (stats.failed != 0 || stats.lost != 0) {
		std::cerr << "drain: the worker reports " << stats.failed << " failed and " << stats.lost
		          << " lost runs of no-op tasks\n";
		return 1;
	}
	return 0;
}

int DrainRaw(const bench::Args &args) {
	const long tasks = args.Int("tasks", 200000);
	const double max_seconds = args.Num("max-seconds", 60);
	const std::string queue = args.Str("queue", "drain");
	const int concurrency = static_cast<int>(args.Int("concurrency", 8));
	const std::string batch = std::to_string(args.Int("batch", 10));
	const std::string conninfo = belay::DefaultConnectionString();

	std::atomic<long> done{0};
	std::atomic<bool> failed{false};
	auto start = bench::Steady::now();
	std::vector<std::thread> threads;
	for (int i = 0; i < concurrency; ++i) {
		threads.emplace_back([&, i] {
			try {
				pqxx::connection connection(conninfo);
				connection.prepare("claim",
				                   "UPDATE bench.raw_tasks SET state = 'running', worker = $2, run_started_at = now(), "
				                   " lease_expires_at = now() + interval '60 seconds', "
				                   " first_started_at = coalesce(first_started_at, now()) "
				                   "WHERE task_id IN (SELECT task_id FROM bench.raw_tasks "
				                   " WHERE queue = $1 AND state = 'pending' "
				                   " ORDER BY priority DESC, available_at, task_id "
				                   " LIMIT $3::integer FOR UPDATE SKIP LOCKED) "
				                   "RETURNING task_id, task_name, params");
				connection.prepare("done", "UPDATE bench.raw_tasks SET state = 'completed', finished_at = now(), "
				                           " lease_expires_at = NULL WHERE task_id = ANY($1::uuid[])");
				const std::string worker = "raw-" + std::to_string(i);
				while (bench::SecondsSince(start) < max_seconds) {
					pqxx::result rows;
					{
						pqxx::work tx(connection);
						rows = tx.exec_prepared("claim", queue, worker, batch);
						tx.commit();
					}
					if (rows.empty())
						break;
					std::string ids = "{";
					for (const auto &row : rows) {
						if (ids.size() > 1)
							ids += ',';
						ids += row[0].c_str();
					}
					ids += '}';
					{
						pqxx::work tx(connection);
						pqxx::result updated = tx.exec_prepared("done", ids);
						tx.commit();
						if (updated.affected_rows() != rows.size())
							throw std::runtime_error("raw drain: completed fewer rows than claimed");
					}
					done += static_cast<long>(rows.size());
				}
			} catch (const std::exception &e) {
				std::cerr << "drain raw: " << e.what() << "\n";
				failed = true;
			}
		});
	}
	// Stop the clock when the last task is done, not when the last thread has noticed the
	// queue is empty.
	double seconds = 0;
	long done_at_stop = 0;
	for (;;) {
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
		done_at_stop = done;
		seconds = bench::SecondsSince(start);
		if (done_at_stop >= tasks || seconds >= max_seconds || failed)
			break;
	}
	for (auto &thread : threads)
		thread.join();
	if (done > tasks) {
		std::cerr << "drain raw: completed " << done << " tasks of " << tasks << "\n";
		return 1;
	}
	bench::Put("completed", done_at_stop);
	bench::Put("seconds", seconds);
	bench::Put("rate", done_at_stop / seconds);
	bench::Put("all_done", done_at_stop >= tasks ? 1 : 0);
	return failed ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) { return bench::RunMode(argc, argv, "drain", DrainBelay, "raw", DrainRaw); }
