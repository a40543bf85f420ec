// Figure 5: spawn → handler start, at a steady rate, with an idle Worker.
//
//   latency --mode belay --queue latency --rate 500 --seconds 10 --concurrency 8
//       a producer thread calls Client::spawn (one task, one transaction) on a fixed
//       schedule; the task's params carry the steady-clock time taken just before the call;
//       a belay::Worker in the same process (LISTEN-driven, idle between tasks) records
//       now − that time when the handler starts.
//   latency --mode notify --rate 500 --seconds 10
//       the baseline, measured the same way: the producer runs
//       `SELECT pg_notify('bench_latency', <time>)` in a transaction; a listener on its own
//       connection records now − that time when the notification arrives.
//
// The first --warmup-seconds (default 1) of samples are not counted. Prints
// latency_p50=, latency_p99=, latency_max= (ms) and latency_n=, the same for the producer's
// call itself (call_*: the spawn, or the notifying transaction, until it returned), plus
// sent= and lost=.
#include "common.hpp"

#include <belay/client.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace {

struct Samples {
	std::mutex mutex;
	std::vector<double> ms;
	long received = 0;
	void Add(int64_t sent_us, bool counted) {
		double late = (bench::SteadyMicros() - sent_us) / 1000.0;
		std::lock_guard<std::mutex> lock(mutex);
		++received;
		if (counted)
			ms.push_back(late);
	}
	long Received() {
		std::lock_guard<std::mutex> lock(mutex);
		return received;
	}
};

// Calls send(counted) on a fixed schedule of rate per second for seconds; returns how
// many were sent. The counted calls' own durations (ms) go to call_ms.
template <typename F>
long Produce(double rate, double seconds, double warmup, std::vector<double> &call_ms, F &&send) {
	const long total = static_cast<long>(rate * seconds);
	const long warm = static_cast<long>(rate * warmup);
	auto start = bench::Steady::now() + std::chrono::milliseconds(100);
	for (long i = 0; i < total; ++i) {
		std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<int64_t>(i * 1e6 / rate)));
		int64_t before = bench::SteadyMicros();
		send(i >= warm);
		if (i >= warm)
			call_ms.push_back((bench::SteadyMicros() - before) / 1000.0);
	}
	return total;
}

// Waits until every sent item arrived, up to a few seconds; returns how many are missing.
long AwaitAll(Samples &samples, long sent) {
	auto deadline = bench::Steady::now() + std::chrono::seconds(10);
	while (samples.Received() < sent && bench::Steady::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	return sent - samples.Received();
}

int Belay(const bench::Args &args) {
	const std::string queue = args.Str("queue", "latency");
	Samples samples;
	belay::WorkerOptions options;
	options.queue = queue;
	options.concurrency = static_cast<int>(args.Int("concurrency", 8));
	options.worker_id = "bench-latency";
	options.handle_signals = false;
	belay::Worker worker(options);
	worker.handle("probe", [&](belay::TaskContext &context) {
		samples.Add(context.params().at("t").get<int64_t>(), context.params().at("counted").get<bool>());
		return belay::Json();
	});
	std::thread runner([&] { worker.run(); });
	std::this_thread::sleep_for(std::chrono::milliseconds(500)); // connected and idle

	belay::Client client;
	std::vector<double> call_ms;
	long sent = Produce(args.Num("rate", 500), args.Num("seconds", 10), args.Num("warmup-seconds", 1), call_ms,
	                    [&](bool counted) {
		client.spawn(queue, "probe", belay::Json{{"t", bench::SteadyMicros()}, {"counted", counted}});
	});
	long lost = AwaitAll(samples, sent);
	worker.stop();
	runner.join();
	bench::PutLatency("latency", samples.ms);
	bench::PutLatency("call", call_ms);
	bench::Put("sent", sent);
	bench::Put("lost", lost);
	belay::WorkerStats stats = worker.stats();
	if (lost != 0 || stats.failed != 0 || stats.lost != 0) {
		std::cerr << "latency: " << lost << " of " << sent << " tasks never started; worker failed=" << stats.failed
		          << " lost=" << stats.lost << "\n";
		return 1;
	}
	return 0;
}

class Receiver : public pqxx::notification_receiver {
public:
	Receiver(pqxx::connection_base &connection, Samples &samples)
	    : pqxx::notification_receiver(connection, "bench_latency"), samples_(samples) {}
	void operator()(const std::string &payload, int) override {
		bool counted = payload[0] == '1';
		samples_.Add(std::stoll(payload.substr(2)), counted);
	}

private:
	Samples &samples_;
};

int Notify(const bench::Args &args) {
	const std::string conninfo = belay::DefaultConnectionString();
	Samples samples;
	std::atomic<bool> stop{false};
	std::atomic<bool> listening{false};
	std::thread listener([&] {
		pqxx::connection connection(conninfo);
		Receiver receiver(connection, samples);
		connection.get_notifs(); // LISTEN is sent now
		listening = true;
		while (!stop)
			connection.await_notification(0, 100000);
	});
	while (!listening)
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	std::this_thread::sleep_for(std::chrono::milliseconds(500));

	pqxx::connection connection(conninfo);
	connection.prepare("notify", "SELECT pg_notify('bench_latency', $1)");
	std::vector<double> call_ms;
	long sent = Produce(args.Num("rate", 500), args.Num("seconds", 10), args.Num("warmup-seconds", 1), call_ms,
	                    [&](bool counted) {
		std::string payload = std::string(counted ? "1" : "0") + ":" + std::to_string(bench::SteadyMicros());
		pqxx::work tx(connection);
		tx.exec_prepared("notify", payload);
		tx.commit();
	});
	long lost = AwaitAll(samples, sent);
	stop = true;
	listener.join();
	bench::PutLatency("latency", samples.ms);
	bench::PutLatency("call", call_ms);
	bench::Put("sent", sent);
	bench::Put("lost", lost);
	return lost == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) { return bench::RunMode(argc, argv, "latency", Belay, "notify", Notify); }
