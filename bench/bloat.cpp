// Figure 8: table and index sizes while a million tasks go through, with cleanup running.
//
//   bloat --queue bloat --tasks 1000000 --first 100000 --concurrency 8 --backlog 20000
//
// A producer spawns tasks with spawn_many (batches of --batch) keeping at most --backlog
// of them unfinished; a belay::Worker completes them (no-op handler); another session
// calls belay.cleanup(NULL, interval '0') every second. When --first tasks are completed,
// and again when --tasks are (the producer keeps the backlog full to the end, so both
// see the queue in full flow), it records for belay.tasks, belay.run_history and
// belay.checkpoints: pg_total_relation_size, pg_relation_size of the heap and of each
// index, and n_live_tup / n_dead_tup / autovacuum_count / vacuum_count (the belay vacuum
// worker's) from pg_stat_user_tables.
//
// A sampler reads the three tables' total size every 100 ms and keeps its peak in each
// stretch of --first tasks (peak.1=, peak.2=, ...); early_peak= is the second stretch's
// (the first starts from an empty table), late_peak= the last one's. If the size is
// bounded, the peaks level off.
//
// Prints lines `first.<relation>.<what>=N` and `last.<relation>.<what>=N` (relation is
// a table or index name; what is total, heap, size, live, dead, autovacuums, vacuums), first.total=
// and last.total= (the three tables' total sizes summed), first_completed= and
// last_completed= (tasks done when measured), plus completed=, cleaned=, seconds=.
#include "common.hpp"

#include <belay/client.hpp>

#include <atomic>
#include <thread>
#include <vector>

namespace {

void Measure(const std::string &conninfo, const std::string &prefix) {
	pqxx::connection connection(conninfo);
	pqxx::nontransaction tx(connection);
	// Let the other backends' statistics reach the shared counters (flushed at most once
	// a second by each backend), then read a fresh snapshot.
	std::this_thread::sleep_for(std::chrono::milliseconds(1100));
	tx.exec("SELECT pg_stat_clear_snapshot()");
	long total = 0;
	for (const auto &row : tx.exec(
	         "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid), "
	         " coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0), coalesce(s.autovacuum_count, 0), "
	         " coalesce(s.vacuum_count, 0) "
	         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	         "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
	         "WHERE n.nspname = 'belay' AND c.relname IN ('tasks', 'run_history', 'checkpoints') ORDER BY 1")) {
		std::string rel = row[0].c_str();
		bench::Put(prefix + "." + rel + ".total", row[1].c_str());
		bench::Put(prefix + "." + rel + ".heap", row[2].c_str());
		bench::Put(prefix + "." + rel + ".live", row[3].c_str());
		bench::Put(prefix + "." + rel + ".dead", row[4].c_str());
		bench::Put(prefix + "." + rel + ".autovacuums", row[5].c_str());
		bench::Put(prefix + "." + rel + ".vacuums", row[6].c_str());
		total += row[1].as<long>();
	}
	for (const auto &row : tx.exec("SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) "
	                               "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
	                               "JOIN pg_namespace n ON n.oid = c.relnamespace "
	                               "WHERE n.nspname = 'belay' AND c.relname IN ('tasks', 'run_history', 'checkpoints') "
	                               "ORDER BY 1")) {
		std::string name = row[0].c_str();
		if (name.rfind("belay.", 0) == 0)
			name = name.substr(6);
		bench::Put(prefix + "." + name + ".size", row[1].c_str());
	}
	bench::Put(prefix + ".total", total);
}

} // namespace

int main(int argc, char **argv) {
	try {
		bench::Args args(argc, argv);
		const std::string queue = args.Str("queue", "bloat");
		const long tasks = args.Int("tasks", 1000000);
		const long first = args.Int("first", tasks / 10);
		const long backlog = args.Int("backlog", 20000);
		const long batch = args.Int("batch", 1000);
		const std::string conninfo = belay::DefaultConnectionString();

		belay::WorkerOptions options;
		options.queue = queue;
		options.concurrency = static_cast<int>(args.Int("concurrency", 8));
		options.worker_id = "bench-bloat";
		options.handle_signals = false;
		belay::Worker worker(options);
		worker.handle("noop", [](belay::TaskContext &) { return belay::Json(); });

		std::atomic<bool> stop{false};
		std::atomic<long> spawned{0};
		std::atomic<long> cleaned{0};
		std::atomic<bool> failed{false};
		std::thread producer([&] {
			try {
				belay::Client client(conninfo);
				std::vector<belay::Json> params;
				// The producer keeps going past --tasks until told to stop, so that both
				// measurements see a queue in full flow, not one drained at the end.
				while (!stop) {
					if (spawned - static_cast<long>(worker.stats().completed) >= backlog) {
						std::this_thread::sleep_for(std::chrono::milliseconds(5));
						continue;
					}
					long n = batch;
					params.clear();
					for (long i = 0; i < n; ++i)
						params.push_back(belay::Json{{"i", spawned + i}});
					client.spawn_many(queue, "noop", params);
					spawned += n;
				}
			} catch (const std::exception &e) {
				std::cerr << "bloat: producer: " << e.what() << "\n";
				failed = true;
			}
		});
		std::thread cleaner([&] {
			try {
				belay::Client client(conninfo);
				while (!stop) {
					cleaned += client.cleanup(std::nullopt, std::chrono::seconds(0));
					for (int i = 0; i < 10 && !stop; ++i)
						std::this_thread::sleep_for(std::chrono::milliseconds(100));
				}
			} catch (const std::exception &e) {
				std::cerr << "bloat: cleanup: " << e.what() << "\n";
				failed = true;
			}
		});

		// The total size, sampled all along, and its peak in each stretch of --first tasks
		// (tasks 0..first, first..2*first, ...). Single samples land anywhere in a vacuum
		// cycle; the peaks compare like with like, and their sequence shows whether the
		// size levels off.
		const long stretches = (tasks + first - 1) / first;
		std::vector<std::atomic<long>> peaks(static_cast<size_t>(stretches) + 1);
		std::thread sampler([&] {
			try {
				pqxx::connection connection(conninfo);
				pqxx::nontransaction tx(connection);
				while (!stop) {
					long done = static_cast<long>(worker.stats().completed);
					long size = tx.exec1("SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c "
					                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'belay' "
					                     "AND c.relname IN ('tasks', 'run_history', 'checkpoints')")[0]
					                .as<long>();
					std::atomic<long> &peak = peaks[static_cast<size_t>(std::min(done / first, stretches))];
					if (size > peak.load())
						peak = size;
					std::this_thread::sleep_for(std::chrono::milliseconds(100));
				}
			} catch (const std::exception &e) {
				std::cerr << "bloat: sampler: " << e.what() << "\n";
				failed = true;
			}
		});

		auto start = bench::Steady::now();
		std::thread runner([&] { worker.run(); });
		bool measured_first = false;
		while (!failed) {
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
			long done = static_cast<long>(worker.stats().completed);
			if (!measured_first && done >= first) {
				bench::Put("first_completed", done);
				Measure(conninfo, "first");
				measured_first = true;
			}
			if (done >= tasks)
				break;
		}
		double seconds = bench::SecondsSince(start);
		bench::Put("last_completed", worker.stats().completed);
		Measure(conninfo, "last");
		stop = true;
		sampler.join();
		for (long k = 0; k < stretches; ++k)
			bench::Put("peak." + std::to_string(k + 1), peaks[static_cast<size_t>(k)].load());
		bench::Put("early_peak", peaks[1].load());                                  // the second stretch
		bench::Put("late_peak", peaks[static_cast<size_t>(stretches - 1)].load()); // the last
		worker.stop();
		runner.join();
		producer.join();
		cleaner.join();
		belay::WorkerStats stats = worker.stats();
		bench::Put("completed", stats.completed);
		bench::Put("cleaned", cleaned.load());
		bench::Put("seconds", seconds);
		if (failed || static_cast<long>(stats.completed) < tasks || stats.failed != 0 || stats.lost != 0) {
			std::cerr << "bloat: completed " << stats.completed << " of " << tasks << " (failed " << stats.failed
			          << ", lost " << stats.lost << ")\n";
			return 1;
		}
		return 0;
	} catch (const std::exception &e) {
		std::cerr << "bloat: " << e.what() << "\n";
		return 1;
	}
}
