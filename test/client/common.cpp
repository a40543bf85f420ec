// Shared helpers of belay's client tests, and main (which also runs the child worker modes).
#include "common.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace belay_test {

double SecondsSince(Steady::time_point start) { return std::chrono::duration<double>(Steady::now() - start).count(); }

// ---------------------------------------------------------------------------------------
// Db

Db::Db() { connection(); }

pqxx::connection &Db::connection() {
	if (!connection_ || !connection_->is_open())
		connection_ = std::make_unique<pqxx::connection>(belay::DefaultConnectionString());
	return *connection_;
}

pqxx::result Db::Q(const std::string &sql, const std::vector<std::optional<std::string>> &args) {
	std::vector<const char *> params;
	for (const auto &arg : args)
		params.push_back(arg ? arg->c_str() : nullptr);
	for (int attempt = 1;; ++attempt) {
		try {
			pqxx::work tx(connection());
			pqxx::result rows = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
			tx.commit();
			return rows;
		} catch (const pqxx::broken_connection &) {
			connection_.reset();
			if (attempt >= 30)
				throw;
			std::this_thread::sleep_for(200ms);
		} catch (const pqxx::sql_error &e) {
			// 57P01: the server is shutting down (a restart test); reconnect.
			if (e.sqlstate() != "57P01" && e.sqlstate().rfind("08", 0) != 0)
				throw;
			connection_.reset();
			if (attempt >= 30)
				throw;
			std::this_thread::sleep_for(200ms);
		}
	}
}

long Db::Count(const std::string &sql, const std::vector<std::optional<std::string>> &args) {
	return Q(sql, args).at(0).at(0).as<long>();
}

std::string Db::Text(const std::string &sql, const std::vector<std::optional<std::string>> &args) {
	pqxx::result rows = Q(sql, args);
	if (rows.empty() || rows[0][0].is_null())
		return "";
	return rows[0][0].c_str();
}

void RecordEffect(const std::string &task_id, const std::string &effect) {
	pqxx::connection connection(belay::DefaultConnectionString());
	pqxx::work tx(connection);
	tx.exec_params(std::string("INSERT INTO ") + kEffects + " (task_id, effect) VALUES ($1::uuid, $2)", task_id,
	               effect);
	tx.commit();
}

long CountEffects(Db &db, const std::string &task_id, const std::string &effect) {
	return db.Count(std::string("SELECT count(*) FROM ") + kEffects + " WHERE task_id = $1::uuid AND effect = $2",
	                {task_id, effect});
}

bool Eventually(const std::function<bool()> &pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
	auto deadline = Steady::now() + timeout;
	for (;;) {
		if (pred())
			return true;
		if (Steady::now() >= deadline)
			return pred();
		std::this_thread::sleep_for(every);
	}
}

// ---------------------------------------------------------------------------------------
// WorkerThread

void WorkerThread::Start() {
	thread_ = std::thread([this] {
		try {
			worker_.run();
		} catch (const std::exception &e) {
			run_error_ = e.what();
		}
	});
}

double WorkerThread::Stop() {
	if (!thread_.joinable())
		return 0;
	auto start = Steady::now();
	worker_.stop();
	thread_.join();
	return SecondsSince(start);
}

// ---------------------------------------------------------------------------------------
// BelayTest

void BelayTest::SetUp() {
	client = RetryOnConnectionError([] { return std::make_unique<belay::Client>(); });
	db = std::make_unique<Db>();
}

void BelayTest::TearDown() {
	for (const std::string &queue : queues) {
		try {
			RetryOnConnectionError([&] { client->drop_queue(queue); });
		} catch (const std::exception &e) {
			ADD_FAILURE() << "drop_queue(" << queue << "): " << e.what();
		}
	}
	queues.clear();
}

std::string BelayTest::MakeQueue(const std::string &suffix, const Json &policy) {
	const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
	std::string name = std::string("ct.") + info->test_suite_name() + "." + info->name();
	if (!suffix.empty())
		name += "." + suffix;
	if (name.size() > 100)
		name = name.substr(name.size() - 100);
	try {
		client->drop_queue(name); // a leftover of an earlier, interrupted run
	} catch (const belay::UnknownQueue &) {
	}
	client->create_queue(name, policy);
	queues.push_back(name);
	return name;
}

belay::WorkerOptions BelayTest::Options(const std::string &queue) const {
	belay::WorkerOptions options;
	options.queue = queue;
	options.worker_id = "ct-" + std::to_string(getpid()) + "-" + queue;
	options.concurrency = 2;
	options.lease_seconds = 30;
	options.poll_interval = 200ms;
	options.shutdown_timeout = 10s;
	options.reconnect_delay = 100ms;
	options.handle_signals = false;
	return options;
}

belay::TaskInfo BelayTest::Task(const std::string &task_id) {
	std::optional<belay::TaskInfo> info = RetryOnConnectionError([&] { return client->task(task_id); });
	if (!info)
		throw std::runtime_error("task " + task_id + " does not exist");
	return *info;
}

belay::TaskInfo BelayTest::WaitTerminal(const std::string &task_id, std::chrono::milliseconds timeout) {
	belay::TaskInfo info;
	bool done = Eventually(
	    [&] {
		    info = Task(task_id);
		    return info.terminal();
	    },
	    timeout);
	if (!done)
		ADD_FAILURE() << "task " << task_id << " (" << info.task_name << ") is still " << info.state << " after "
		              << timeout.count() << " ms";
	return info;
}

bool BelayTest::WaitState(const std::string &task_id, const std::string &state, std::chrono::milliseconds timeout) {
	return Eventually([&] { return Task(task_id).state == state; }, timeout);
}

long BelayTest::CountRuns(const std::string &task_id, const std::string &outcome) {
	return db->Count("SELECT count(*) FROM belay.runs WHERE task_id = $1::uuid AND outcome = $2", {task_id, outcome});
}

std::optional<Json> BelayTest::Checkpoint(const std::string &task_id, const std::string &step) {
	pqxx::result rows =
	    db->Q("SELECT value::text FROM belay.checkpoints WHERE task_id = $1::uuid AND step = $2", {task_id, step});
	if (rows.empty())
		return std::nullopt;
	return Json::parse(rows[0][0].c_str());
}

// ---------------------------------------------------------------------------------------
// Child worker processes

pid_t StartChild(const std::string &mode, const std::string &queue) {
	std::fflush(stdout);
	std::fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "client_tests", "--child", mode.c_str(), queue.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	return pid;
}

int WaitChild(pid_t pid, std::chrono::milliseconds timeout) {
	auto deadline = Steady::now() + timeout;
	for (;;) {
		int status = 0;
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid)
			return status;
		if (got < 0 && errno != EINTR)
			return -1;
		if (Steady::now() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		std::this_thread::sleep_for(20ms);
	}
}

Json CrashyHandler(belay::TaskContext &ctx, bool block_after_b) {
	int a = ctx.step("a", [&] {
		RecordEffect(ctx.task_id(), "a");
		return 1;
	});
	std::string b = ctx.step("b", [&] {
		RecordEffect(ctx.task_id(), "b");
		return std::string("two");
	});
	if (block_after_b) {
		RecordEffect(ctx.task_id(), "blocked");
		for (;;)
			std::this_thread::sleep_for(1s); // until SIGKILL
	}
	double c = ctx.step("c", [&] {
		RecordEffect(ctx.task_id(), "c");
		return 3.5;
	});
	return {{"a", a}, {"b", b}, {"c", c}, {"attempt", ctx.attempt()}};
}

Json GracefulHandler(belay::TaskContext &ctx, const std::string &release_file) {
	RecordEffect(ctx.task_id(), "started");
	auto deadline = Steady::now() + 20s;
	struct stat st {};
	while (stat(release_file.c_str(), &st) != 0 && Steady::now() < deadline)
		std::this_thread::sleep_for(20ms);
	ctx.step("finish", [&] {
		RecordEffect(ctx.task_id(), "finish");
		return true;
	});
	return {{"done", true}};
}

// client_tests --child MODE QUEUE
//   crash: a worker (lease 2 s) whose "crashy" handler blocks after steps a and b.
//   graceful: a worker (SIGTERM/SIGINT stop it) whose "graceful" handler waits for the
//             release file QUEUE.release in $TMPDIR (or /tmp).
int ChildMain(int argc, char **argv) {
	if (argc < 4) {
		std::cerr << "usage: client_tests --child crash|graceful QUEUE\n";
		return 2;
	}
	std::string mode = argv[2], queue = argv[3];
	belay::WorkerOptions options;
	options.queue = queue;
	options.worker_id = "child-" + mode + "-" + std::to_string(getpid());
	options.concurrency = 4;
	options.poll_interval = 200ms;
	options.reconnect_delay = 100ms;
	if (mode == "crash") {
		options.lease_seconds = 2;
		options.handle_signals = false;
		belay::Worker worker(options);
		worker.handle("crashy", [](belay::TaskContext &ctx) { return CrashyHandler(ctx, true); });
		worker.run();
		return 0;
	}
	if (mode == "graceful") {
		options.lease_seconds = 30;
		options.handle_signals = true;
		const char *tmp = std::getenv("TMPDIR");
		std::string release = std::string(tmp ? tmp : "/tmp") + "/" + queue + ".release";
		belay::Worker worker(options);
		worker.handle("graceful", [release](belay::TaskContext &ctx) { return GracefulHandler(ctx, release); });
		worker.run();
		belay::WorkerStats stats = worker.stats();
		std::cerr << "child " << options.worker_id << " stopped: claimed " << stats.claimed << ", completed "
		          << stats.completed << "\n";
		return 0;
	}
	std::cerr << "unknown child mode " << mode << "\n";
	return 2;
}

// Creates the effects table for the whole run, and drops it at the end.
class Environment : public ::testing::Environment {
public:
	void SetUp() override {
		Db db;
		db.Q(std::string("CREATE TABLE IF NOT EXISTS ") + kEffects +
		     " (task_id uuid NOT NULL, effect text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
	}
	void TearDown() override {
		try {
			Db db;
			db.Q(std::string("DROP TABLE IF EXISTS ") + kEffects);
		} catch (const std::exception &e) {
			std::cerr << "dropping " << kEffects << ": " << e.what() << "\n";
		}
	}
};

} // namespace belay_test

int main(int argc, char **argv) {
	if (argc >= 2 && std::string(argv[1]) == "--child")
		return belay_test::ChildMain(argc, argv);
	::testing::InitGoogleTest(&argc, argv);
	::testing::AddGlobalTestEnvironment(new belay_test::Environment);
	return RUN_ALL_TESTS();
}
