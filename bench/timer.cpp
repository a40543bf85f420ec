// Figure 6: timer precision.
//
//   timer --mode belay --queue timer --tasks 1000 --lead 3 --span 10 --concurrency 8
//       spawns --tasks tasks (spawn_many, shuffled) whose handler sleeps, with
//       TaskContext::sleep_until, to its own due time; the due times are staggered over
//       --span seconds starting --lead seconds from now (one per slot, at a random point of
//       the slot). The Worker runs each task twice: the first run suspends, the background
//       worker makes it claimable when due, the second run completes. Lateness of the claim
//       is the second claim's run_started_at (database clock) minus the due time; lateness of
//       the handler start (client clock) is also printed.
//   timer --mode os --tasks 1000 --lead 3 --span 10
//       the baseline, the same schedule with std::this_thread::sleep_until on one thread.
//
// Prints claim_late_p50/p99/max (ms; in os mode the OS wake-up lateness), and for belay
// start_late_*; missed= counts tasks whose first run came after their due time (the run is
// then invalid: they never slept).
#include "common.hpp"

#include <belay/client.hpp>

#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace {

using Wall = std::chrono::system_clock;

std::vector<int64_t> DueTimes(const bench::Args &args) {
	const long tasks = args.Int("tasks", 1000);
	const double lead = args.Num("lead", 3);
	const double span = args.Num("span", 10);
	std::mt19937_64 random(42);
	std::uniform_real_distribution<double> within(0.0, 1.0);
	const int64_t start = bench::WallMicros() + static_cast<int64_t>(lead * 1e6);
	const double slot = span * 1e6 / tasks;
	std::vector<int64_t> due;
	for (long i = 0; i < tasks; ++i)
		due.push_back(start + static_cast<int64_t>((i + within(random)) * slot));
	return due;
}

Wall::time_point FromMicros(int64_t us) { return Wall::time_point(std::chrono::microseconds(us)); }

int Os(const bench::Args &args) {
	std::vector<int64_t> due = DueTimes(args);
	std::vector<double> late;
	for (int64_t at : due) {
		std::this_thread::sleep_until(FromMicros(at));
		late.push_back((bench::WallMicros() - at) / 1000.0);
	}
	bench::PutLatency("claim_late", late);
	bench::Put("missed", 0);
	return 0;
}

int Belay(const bench::Args &args) {
	const std::string queue = args.Str("queue", "timer");
	std::vector<int64_t> due = DueTimes(args);

	std::mutex mutex;
	std::set<std::string> seen;
	std::vector<double> start_late;
	long missed = 0;

	belay::WorkerOptions options;
	options.queue = queue;
	options.concurrency = static_cast<int>(args.Int("concurrency", 8));
	options.worker_id = "bench-timer";
	options.handle_signals = false;
	belay::Worker worker(options);
	worker.handle("sleeper", [&](belay::TaskContext &context) {
		int64_t at = context.params().at("due_us").get<int64_t>();
		bool first;
		{
			std::lock_guard<std::mutex> lock(mutex);
			first = seen.insert(context.task_id()).second;
		}
		context.sleep_until("wait", FromMicros(at)); // throws Suspended until due
		double late = (bench::WallMicros() - at) / 1000.0;
		std::lock_guard<std::mutex> lock(mutex);
		if (first)
			++missed; // its first run came after the due time: it never slept
		else
			start_late.push_back(late);
		return belay::Json();
	});

	belay::Client client;
	std::vector<belay::Json> params;
	for (int64_t at : due)
		params.push_back(belay::Json{{"due_us", at}});
	std::shuffle(params.begin(), params.end(), std::mt19937_64(7));
	for (size_t from = 0; from < params.size(); from += 1000) {
		std::vector<belay::Json> batch(params.begin() + from, params.begin() + std::min(params.size(), from + 1000));
		client.spawn_many(queue, "sleeper", batch);
	}

	std::thread runner([&] { worker.run(); });
	const int64_t last = *std::max_element(due.begin(), due.end());
	const auto give_up = bench::Steady::now() + std::chrono::microseconds(last - bench::WallMicros()) +
	                     std::chrono::seconds(10);
	for (;;) {
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
		if (static_cast<long>(worker.stats().completed) >= static_cast<long>(due.size()) ||
		    bench::Steady::now() > give_up)
			break;
	}
	worker.stop();
	runner.join();
	belay::WorkerStats stats = worker.stats();

	// The claim that started the second run, on the database clock.
	std::vector<double> claim_late;
	{
		pqxx::work tx(client.connection());
		pqxx::result rows = tx.exec_params(
		    "SELECT (extract(epoch FROM run_started_at) * 1e6 - (params->>'due_us')::float8) / 1000.0 "
		    "FROM belay.tasks WHERE queue = $1 AND state = 'completed'",
		    queue);
		for (const auto &row : rows)
			claim_late.push_back(row[0].as<double>());
		tx.commit();
	}
	bench::PutLatency("claim_late", claim_late);
	bench::PutLatency("start_late", start_late);
	bench::Put("missed", missed);
	bench::Put("completed", stats.completed);
	bench::Put("suspended", stats.suspended);
	if (static_cast<long>(stats.completed) != static_cast<long>(due.size()) || stats.failed != 0 || stats.lost != 0 ||
	    missed != 0) {
		std::cerr << "timer: completed " << stats.completed << " of " << due.size() << " (failed " << stats.failed
		          << ", lost " << stats.lost << ", missed " << missed << ")\n";
		return 1;
	}
	return 0;
}

} // namespace

int main(int argc, char **argv) { return bench::RunMode(argc, argv, "timer", Belay, "os", Os); }
