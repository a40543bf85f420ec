// claim_race: many sessions claiming and completing the same queue at once.
//
// Proves that 8 (or more) concurrent sessions, each with its own connection, claiming
// with different batch sizes and completing one or several tasks per transaction, finish
// every one of 20,000 tasks exactly once: none lost, none completed twice, no task handed
// to two sessions at once, no deadlock and no error. Two of the sessions fail some tasks
// on their first attempt; those come back after the default backoff and must be finished
// too.
//
// Connection: libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE); the database must
// have `CREATE EXTENSION belay`. Build with test/concurrency/build.sh.
//
//   build/claim_race [--threads N] [--tasks N] [--timeout SECONDS]
//
// Prints a report and a last line "N passed, M failed"; exits non-zero on any failure.

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../common/race_check.hpp"

namespace {

using Clock = std::chrono::steady_clock;

const char *const kQueue = "race";
const char *const kTaskName = "job";
constexpr int kSpawnBatch = 1000;
constexpr int kLeaseSeconds = 30;
constexpr int kFailEvery = 97; // a failing thread fails its every 97th claimed task (first attempts only)

struct Options {
	int threads = 8;
	int tasks = 20000;
	int timeout_seconds = 120;
};

// How one worker thread behaves.
struct Profile {
	int qty;           // claim batch size
	bool batch_commit; // complete all claimed tasks in one transaction (else one transaction each)
	bool fails;        // fails every kFailEvery-th claimed task that is on its first attempt
};

Profile ProfileFor(int k) {
	static const Profile profiles[] = {
	    {1, false, false}, {5, false, false}, {10, true, false}, {1, false, true},
	    {5, true, false},  {10, false, true}, {7, true, false},  {10, false, false},
	};
	return profiles[k % (sizeof profiles / sizeof profiles[0])];
}

// ---------------------------------------------------------------------------------------
// Shared, client-side record of what happened. Every mutation holds the mutex.

enum class Hold { Held, Released, Completed, Abandoned };

struct TaskTrack {
	Hold hold = Hold::Released;
	std::string run_id;       // the current (or last) run
	int holder = -1;          // thread that holds (or last held) it
	int claims = 0;
	int fails = 0;
	int completions = 0;
	int completed_by = -1;
};

struct Ledger {
	std::mutex mu;
	std::unordered_map<std::string, int> task_n;          // spawned task_id -> n
	std::unordered_map<std::string, TaskTrack> tasks;     // by task_id
	std::unordered_map<std::string, std::string> runs;    // run_id -> task_id, every claimed run
	std::unordered_map<std::string, std::string> run_end; // run_id -> "completed" | "failed"
	std::unordered_map<std::string, int> run_worker;      // run_id -> thread
	std::vector<std::string> violations;                  // broken invariants, client side
	std::vector<std::string> errors;                      // exceptions
	std::vector<std::string> completed_order;             // task_ids, one per successful complete
	int deadlocks = 0;
	int serialization = 0;

	void Violation(const std::string &what) {
		if (violations.size() < 50)
			violations.push_back(what);
		else if (violations.size() == 50)
			violations.push_back("... (more violations not shown)");
	}
};

Ledger ledger;
std::atomic<long> completed_total{0};

struct ThreadStats {
	long claims_calls = 0, empty_claims = 0, claimed = 0, completed = 0, failed = 0, errors = 0;
	long transactions = 0;
	double max_claim_ms = 0, max_complete_ms = 0;
	bool timed_out = false;
};

double Ms(Clock::time_point a, Clock::time_point b) {
	return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string Describe(const std::exception &e) {
	std::string what = race::Trim(e.what());
	std::string state = race::SqlState(e);
	if (auto *sql = dynamic_cast<const pqxx::sql_error *>(&e))
		return "SQLSTATE " + (state.empty() ? std::string("?") : state) + ": " + what + " [query: " + sql->query() + "]";
	return state.empty() ? what : "SQLSTATE " + state + ": " + what;
}

void RecordError(int k, const char *where, const std::exception &e) {
	std::string state = race::SqlState(e);
	std::lock_guard<std::mutex> lock(ledger.mu);
	if (state == "40P01")
		++ledger.deadlocks;
	if (state == "40001")
		++ledger.serialization;
	std::string line = "w" + std::to_string(k) + " " + where + ": " + Describe(e);
	if (ledger.errors.size() < 50)
		ledger.errors.push_back(line);
	else if (ledger.errors.size() == 50)
		ledger.errors.push_back("... (more errors not shown)");
}

struct Claimed {
	std::string run_id, task_id;
	int attempt;
	int n;
	std::string params;
};

// After a claim committed: the tasks must be unheld, not completed, the runs new.
void RecordClaims(int k, const std::vector<Claimed> &got) {
	std::lock_guard<std::mutex> lock(ledger.mu);
	for (const Claimed &c : got) {
		auto spawned = ledger.task_n.find(c.task_id);
		if (spawned == ledger.task_n.end()) {
			ledger.Violation("w" + std::to_string(k) + " claimed unknown task " + c.task_id);
			continue;
		}
		if (spawned->second != c.n)
			ledger.Violation("task " + c.task_id + " spawned with n=" + std::to_string(spawned->second) +
			                 " but claimed with params " + c.params);
		if (!ledger.runs.emplace(c.run_id, c.task_id).second)
			ledger.Violation("run id " + c.run_id + " handed out twice (task " + c.task_id + ")");
		ledger.run_worker[c.run_id] = k;
		TaskTrack &t = ledger.tasks[c.task_id];
		switch (t.hold) {
		case Hold::Held:
			ledger.Violation("task " + c.task_id + " claimed by w" + std::to_string(k) + " (run " + c.run_id +
			                 ") while w" + std::to_string(t.holder) + " holds it (run " + t.run_id + ")");
			break;
		case Hold::Completed:
			ledger.Violation("task " + c.task_id + " claimed by w" + std::to_string(k) + " (run " + c.run_id +
			                 ") after w" + std::to_string(t.completed_by) + " completed it");
			break;
		case Hold::Released:
			if (t.claims > 0 && t.fails == 0)
				ledger.Violation("task " + c.task_id + " claimed again without having failed");
			break;
		case Hold::Abandoned: // an earlier run of it hit an error (already counted); its lease may have lapsed
			break;
		}
		int expected_attempt = 1 + t.fails;
		if (t.hold != Hold::Abandoned && c.attempt != expected_attempt)
			ledger.Violation("task " + c.task_id + " claimed with attempt " + std::to_string(c.attempt) +
			                 ", expected " + std::to_string(expected_attempt));
		t.hold = Hold::Held;
		t.run_id = c.run_id;
		t.holder = k;
		++t.claims;
	}
}

// Called inside the ending transaction, before its commit, so that a re-claim by another
// thread (possible only once the fail has committed) is always recorded after this.
void RecordFailBeforeCommit(const Claimed &c) {
	std::lock_guard<std::mutex> lock(ledger.mu);
	TaskTrack &t = ledger.tasks[c.task_id];
	t.hold = Hold::Released;
	++t.fails;
	ledger.run_end[c.run_id] = "failed";
}

void RecordCompleted(int k, const std::vector<Claimed> &done) {
	std::lock_guard<std::mutex> lock(ledger.mu);
	for (const Claimed &c : done) {
		TaskTrack &t = ledger.tasks[c.task_id];
		if (t.completions > 0)
			ledger.Violation("task " + c.task_id + " completed twice: by w" + std::to_string(t.completed_by) +
			                 " and by w" + std::to_string(k) + " (run " + c.run_id + ")");
		if (t.hold != Hold::Held || t.run_id != c.run_id)
			ledger.Violation("task " + c.task_id + " completed by w" + std::to_string(k) + " with run " + c.run_id +
			                 " that is not its recorded live run " + t.run_id);
		t.hold = Hold::Completed;
		++t.completions;
		t.completed_by = k;
		ledger.run_end[c.run_id] = "completed";
		ledger.completed_order.push_back(c.task_id);
	}
}

void RecordAbandoned(const std::vector<Claimed> &lost) {
	std::lock_guard<std::mutex> lock(ledger.mu);
	for (const Claimed &c : lost) {
		TaskTrack &t = ledger.tasks[c.task_id];
		if (t.hold == Hold::Held && t.run_id == c.run_id)
			t.hold = Hold::Abandoned;
	}
}

// A start line, so that every thread has connected before any claims.
struct StartGate {
	std::mutex mu;
	std::condition_variable cv;
	int ready = 0;
	bool open = false;
	void Arrive() {
		std::lock_guard<std::mutex> lock(mu);
		++ready;
		cv.notify_all();
	}
	void WaitAll(int n) {
		std::unique_lock<std::mutex> lock(mu);
		cv.wait(lock, [&] { return ready >= n; });
	}
	void Open() {
		std::lock_guard<std::mutex> lock(mu);
		open = true;
		cv.notify_all();
	}
	void WaitOpen() {
		std::unique_lock<std::mutex> lock(mu);
		cv.wait(lock, [&] { return open; });
	}
};

StartGate gate;

void Worker(int k, long target, Clock::time_point deadline, ThreadStats &stats) {
	const Profile profile = ProfileFor(k);
	const std::string worker = "w" + std::to_string(k);
	std::unique_ptr<pqxx::connection> conn;
	try {
		conn = std::make_unique<pqxx::connection>("");
		conn->prepare("claim", "SELECT run_id::text, task_id::text, params::text, attempt, (params->>'n')::int "
		                       "FROM belay.claim($1, $2, $3, $4)");
		conn->prepare("complete", "SELECT belay.complete($1::uuid, jsonb_build_object('by', $2::text))");
		conn->prepare("fail", "SELECT belay.fail($1::uuid, '{\"kind\":\"test\"}'::jsonb)");
	} catch (const std::exception &e) {
		RecordError(k, "connect", e);
		++stats.errors;
		gate.Arrive();
		return;
	}
	gate.Arrive();
	gate.WaitOpen();

	int empties = 0;
	long claimed_by_me = 0;
	while (true) {
		if (Clock::now() > deadline) {
			stats.timed_out = true;
			break;
		}
		std::vector<Claimed> got;
		try {
			auto t0 = Clock::now();
			pqxx::work tx(*conn);
			pqxx::result r = tx.exec_prepared("claim", kQueue, worker, profile.qty, kLeaseSeconds);
			tx.commit();
			stats.max_claim_ms = std::max(stats.max_claim_ms, Ms(t0, Clock::now()));
			++stats.transactions;
			for (const auto &row : r)
				got.push_back(Claimed{row[0].as<std::string>(), row[1].as<std::string>(), row[3].as<int>(),
				                      row[4].is_null() ? -1 : row[4].as<int>(), row[2].as<std::string>()});
			if (static_cast<int>(got.size()) > profile.qty) {
				std::lock_guard<std::mutex> lock(ledger.mu);
				ledger.Violation(worker + " asked for " + std::to_string(profile.qty) + " tasks and got " +
				                 std::to_string(got.size()));
			}
		} catch (const pqxx::broken_connection &e) {
			RecordError(k, "claim", e);
			++stats.errors;
			break;
		} catch (const std::exception &e) {
			RecordError(k, "claim", e);
			++stats.errors;
			std::this_thread::sleep_for(std::chrono::milliseconds(10));
			continue;
		}
		++stats.claims_calls;
		if (got.empty()) {
			++stats.empty_claims;
			++empties;
			if (empties >= 2 && completed_total.load() >= target)
				break;
			std::this_thread::sleep_for(std::chrono::milliseconds(empties >= 2 ? 20 : 2));
			continue;
		}
		empties = 0;
		stats.claimed += static_cast<long>(got.size());
		RecordClaims(k, got);

		// Which to fail: failing threads fail their every kFailEvery-th claimed task when it
		// is on its first attempt, so a task fails at most once and finishes on attempt 2.
		std::vector<Claimed> to_fail, to_complete;
		for (Claimed &c : got) {
			++claimed_by_me;
			if (profile.fails && claimed_by_me % kFailEvery == 0 && c.attempt == 1)
				to_fail.push_back(std::move(c));
			else
				to_complete.push_back(std::move(c));
		}

		for (const Claimed &c : to_fail) {
			try {
				pqxx::work tx(*conn);
				pqxx::row row = tx.exec_prepared1("fail", c.run_id);
				std::string state = row[0].as<std::string>();
				if (state != "pending") {
					std::lock_guard<std::mutex> lock(ledger.mu);
					ledger.Violation("fail of run " + c.run_id + " on attempt 1 returned '" + state +
					                 "', expected 'pending'");
				}
				RecordFailBeforeCommit(c);
				tx.commit();
				++stats.transactions;
				++stats.failed;
			} catch (const std::exception &e) {
				RecordError(k, "fail", e);
				++stats.errors;
				RecordAbandoned({c});
				if (dynamic_cast<const pqxx::broken_connection *>(&e))
					return;
			}
		}

		if (profile.batch_commit) {
			try {
				auto t0 = Clock::now();
				pqxx::work tx(*conn);
				for (const Claimed &c : to_complete)
					tx.exec_prepared1("complete", c.run_id, worker); // one row: the void result
				tx.commit();
				stats.max_complete_ms = std::max(stats.max_complete_ms, Ms(t0, Clock::now()));
				++stats.transactions;
				RecordCompleted(k, to_complete);
				stats.completed += static_cast<long>(to_complete.size());
				completed_total += static_cast<long>(to_complete.size());
			} catch (const std::exception &e) {
				RecordError(k, "complete (batch)", e);
				++stats.errors;
				RecordAbandoned(to_complete);
				if (dynamic_cast<const pqxx::broken_connection *>(&e))
					return;
			}
		} else {
			for (const Claimed &c : to_complete) {
				try {
					auto t0 = Clock::now();
					pqxx::work tx(*conn);
					tx.exec_prepared1("complete", c.run_id, worker); // one row: the void result
					tx.commit();
					stats.max_complete_ms = std::max(stats.max_complete_ms, Ms(t0, Clock::now()));
					++stats.transactions;
					RecordCompleted(k, {c});
					++stats.completed;
					++completed_total;
				} catch (const std::exception &e) {
					RecordError(k, "complete", e);
					++stats.errors;
					RecordAbandoned({c});
					if (dynamic_cast<const pqxx::broken_connection *>(&e))
						return;
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------------------

using race::Check;

Options ParseArgs(int argc, char **argv) {
	Options o;
	for (int i = 1; i < argc; ++i) {
		std::string a = argv[i];
		auto value = [&](long min) { return static_cast<int>(race::OptionValue("claim_race", argc, argv, i, min)); };
		if (a == "--threads")
			o.threads = value(8);
		else if (a == "--tasks")
			o.tasks = value(1);
		else if (a == "--timeout")
			o.timeout_seconds = value(1);
		else {
			std::cerr << "usage: claim_race [--threads N>=8] [--tasks N] [--timeout SECONDS]\n";
			std::exit(2);
		}
	}
	return o;
}

std::string Count(const pqxx::row &row, int i) { return row[i].is_null() ? "NULL" : row[i].as<std::string>(); }

} // namespace

int main(int argc, char **argv) {
	const Options opt = ParseArgs(argc, argv);
	std::cout << "claim_race: " << opt.threads << " sessions, " << opt.tasks << " tasks, queue '" << kQueue
	          << "', timeout " << opt.timeout_seconds << " s\n";
	auto t_start = Clock::now();

	// ---- setup
	std::unique_ptr<pqxx::connection> admin;
	try {
		admin = std::make_unique<pqxx::connection>("");
		try {
			pqxx::work tx(*admin);
			tx.exec_params("SELECT belay.drop_queue($1)", kQueue);
			tx.commit();
		} catch (const pqxx::sql_error &e) {
			if (e.sqlstate() != "BL003")
				throw;
		}
		{
			pqxx::work tx(*admin);
			tx.exec_params("SELECT belay.create_queue($1)", kQueue);
			tx.commit();
		}
	} catch (const std::exception &e) {
		std::cout << "setup failed: " << Describe(e) << "\n";
		Check(false, "setup: create queue");
		return race::Tally();
	}

	int spawned = 0, created = 0;
	try {
		for (int base = 0; base < opt.tasks; base += kSpawnBatch) {
			int end = std::min(opt.tasks, base + kSpawnBatch);
			std::string array = "[";
			for (int i = base; i < end; ++i) {
				if (i > base)
					array += ',';
				array += "{\"n\":" + std::to_string(i) + "}";
			}
			array += "]";
			pqxx::work tx(*admin);
			pqxx::result r = tx.exec_params("SELECT task_id::text, created FROM belay.spawn_many($1, $2, $3::jsonb)",
			                                kQueue, kTaskName, array);
			tx.commit();
			if (static_cast<int>(r.size()) != end - base)
				throw std::runtime_error("spawn_many returned " + std::to_string(r.size()) + " rows for " +
				                         std::to_string(end - base) + " params");
			int i = base;
			for (const auto &row : r) {
				ledger.task_n.emplace(row[0].as<std::string>(), i++);
				++spawned;
				if (row[1].as<bool>())
					++created;
			}
		}
	} catch (const std::exception &e) {
		std::cout << "spawn failed: " << Describe(e) << "\n";
	}
	double spawn_s = std::chrono::duration<double>(Clock::now() - t_start).count();
	std::cout << "spawned " << spawned << " tasks in " << spawn_s << " s\n";
	Check(spawned == opt.tasks && created == opt.tasks &&
	          static_cast<int>(ledger.task_n.size()) == opt.tasks,
	      "setup: spawn_many created " + std::to_string(opt.tasks) + " distinct tasks",
	      std::to_string(spawned) + " rows, " + std::to_string(created) + " created, " +
	          std::to_string(ledger.task_n.size()) + " distinct ids");
	if (spawned != opt.tasks) {
		return race::Tally();
	}

	// ---- the race
	std::vector<ThreadStats> stats(opt.threads);
	std::vector<std::thread> threads;
	auto deadline = Clock::now() + std::chrono::seconds(opt.timeout_seconds);
	for (int k = 0; k < opt.threads; ++k)
		threads.emplace_back(Worker, k, static_cast<long>(opt.tasks), deadline, std::ref(stats[k]));
	gate.WaitAll(opt.threads);
	auto t_race = Clock::now();
	gate.Open();
	for (auto &t : threads)
		t.join();
	double race_s = std::chrono::duration<double>(Clock::now() - t_race).count();

	// ---- report
	bool timed_out = false;
	long sum_claimed = 0, sum_completed = 0, sum_failed = 0, sum_tx = 0;
	std::cout << "\nrace finished in " << race_s << " s\n";
	std::cout << "thread  qty  commit  fails  claim-calls  empty  claimed  completed  failed  errors  "
	             "max-claim-ms  max-complete-ms\n";
	for (int k = 0; k < opt.threads; ++k) {
		const ThreadStats &s = stats[k];
		Profile p = ProfileFor(k);
		timed_out = timed_out || s.timed_out;
		sum_claimed += s.claimed;
		sum_completed += s.completed;
		sum_failed += s.failed;
		sum_tx += s.transactions;
		char line[256];
		std::snprintf(line, sizeof line, "w%-5d  %3d  %-6s  %-5s  %11ld  %5ld  %7ld  %9ld  %6ld  %6ld  %12.1f  %15.1f\n",
		              k, p.qty, p.batch_commit ? "batch" : "each", p.fails ? "yes" : "no", s.claims_calls,
		              s.empty_claims, s.claimed, s.completed, s.failed, s.errors, s.max_claim_ms, s.max_complete_ms);
		std::cout << line;
	}
	std::cout << "total: " << sum_claimed << " claimed, " << sum_completed << " completed, " << sum_failed
	          << " failed (retried), " << sum_tx << " transactions, "
	          << static_cast<long>(sum_completed / std::max(race_s, 1e-9)) << " completions/s\n";
	{
		std::lock_guard<std::mutex> lock(ledger.mu);
		for (const auto &e : ledger.errors)
			std::cout << "error: " << e << "\n";
		for (const auto &v : ledger.violations)
			std::cout << "violation: " << v << "\n";
	}
	std::cout << "\n";

	// ---- client-side checks
	Check(ledger.errors.empty(), "no session got an error", std::to_string(ledger.errors.size()) + " errors");
	Check(ledger.deadlocks == 0, "no deadlock (40P01)", std::to_string(ledger.deadlocks));
	Check(ledger.serialization == 0, "no serialization failure (40001)", std::to_string(ledger.serialization));
	Check(!timed_out, "all sessions finished before the " + std::to_string(opt.timeout_seconds) + " s timeout",
	      std::to_string(race_s) + " s");
	Check(ledger.violations.empty(), "client: no task handed to two sessions at once, none claimed after completion",
	      std::to_string(ledger.violations.size()) + " violations");
	{
		std::unordered_set<std::string> distinct(ledger.completed_order.begin(), ledger.completed_order.end());
		bool all_known = std::all_of(distinct.begin(), distinct.end(),
		                             [](const std::string &id) { return ledger.task_n.count(id) == 1; });
		Check(ledger.completed_order.size() == static_cast<size_t>(opt.tasks) &&
		          distinct.size() == static_cast<size_t>(opt.tasks) && all_known,
		      "client: " + std::to_string(opt.tasks) + " completions of " + std::to_string(opt.tasks) +
		          " distinct spawned tasks",
		      std::to_string(ledger.completed_order.size()) + " completions, " + std::to_string(distinct.size()) +
		          " distinct");
	}
	Check(sum_failed > 0, "the retry path was exercised (some first attempts failed)",
	      std::to_string(sum_failed) + " failed");

	// ---- database checks
	try {
		pqxx::work tx(*admin);
		pqxx::row states = tx.exec_params1(
		    "SELECT count(*), count(*) FILTER (WHERE state = 'completed'), "
		    "       count(*) FILTER (WHERE run_id IS NULL OR lease_expires_at IS NOT NULL), "
		    "       coalesce(string_agg(DISTINCT state, ',') FILTER (WHERE state <> 'completed'), '') "
		    "FROM belay.tasks WHERE queue = $1",
		    kQueue);
		Check(states[0].as<long>() == opt.tasks && states[1].as<long>() == opt.tasks,
		      "db: " + std::to_string(opt.tasks) + " tasks, all in state 'completed'",
		      Count(states, 0) + " tasks, " + Count(states, 1) + " completed" +
		          (states[3].as<std::string>().empty() ? "" : ", other states: " + states[3].as<std::string>()));
		// A completed task keeps the run that completed it (belay.runs reads it there), not its lease.
		Check(states[2].as<long>() == 0, "db: every task keeps its completing run and no lease",
		      Count(states, 2) + " without a run or with a lease");

		pqxx::row done = tx.exec_params1("SELECT count(*), count(DISTINCT r.task_id) FROM belay.runs r "
		                                 "JOIN belay.tasks t USING (task_id) "
		                                 "WHERE t.queue = $1 AND r.outcome = 'completed'",
		                                 kQueue);
		Check(done[0].as<long>() == opt.tasks && done[1].as<long>() == opt.tasks,
		      "db: exactly one 'completed' run per task",
		      Count(done, 0) + " completed runs over " + Count(done, 1) + " tasks");

		// Every run in the database against the client's record of runs.
		pqxx::result runs = tx.exec_params(
		    "SELECT r.run_id::text, r.task_id::text, r.outcome, r.worker, r.attempt, "
		    "       (r.started_at <= r.ended_at) "
		    "FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE t.queue = $1",
		    kQueue);
		std::map<std::string, long> outcomes;
		long mismatched = 0, unknown = 0;
		std::vector<std::string> samples;
		auto sample = [&](const std::string &s) {
			if (samples.size() < 10)
				samples.push_back(s);
		};
		std::unordered_set<std::string> db_runs;
		for (const auto &row : runs) {
			std::string run = row[0].as<std::string>(), task = row[1].as<std::string>(), outcome = row[2].as<std::string>(),
			            worker = row[3].as<std::string>();
			++outcomes[outcome];
			db_runs.insert(run);
			auto it = ledger.runs.find(run);
			if (it == ledger.runs.end()) {
				++unknown;
				sample("db run " + run + " of task " + task + " (" + outcome + ") was never claimed by a session");
				continue;
			}
			auto end = ledger.run_end.find(run);
			std::string expected_outcome = end == ledger.run_end.end() ? "(none)" : end->second;
			std::string expected_worker = "w" + std::to_string(ledger.run_worker[run]);
			if (it->second != task || outcome != expected_outcome || worker != expected_worker || !row[5].as<bool>()) {
				++mismatched;
				sample("run " + run + ": db says task " + task + ", " + outcome + " by " + worker + "; client: task " +
				       it->second + ", " + expected_outcome + " by " + expected_worker);
			}
		}
		long missing = 0;
		for (const auto &[run, task] : ledger.runs)
			if (!db_runs.count(run)) {
				++missing;
				sample("claimed run " + run + " of task " + task + " has no row in belay.runs");
			}
		for (const auto &s : samples)
			std::cout << "   " << s << "\n";
		std::ostringstream by_outcome;
		for (const auto &[o, n] : outcomes)
			by_outcome << o << "=" << n << " ";
		Check(unknown == 0 && missing == 0 && mismatched == 0 &&
		          static_cast<long>(runs.size()) == static_cast<long>(ledger.runs.size()),
		      "db: belay.runs matches the sessions' runs one to one (task, outcome, worker)",
		      std::to_string(runs.size()) + " db runs (" + by_outcome.str() + "), " +
		          std::to_string(ledger.runs.size()) + " claimed; " + std::to_string(unknown) + " unknown, " +
		          std::to_string(missing) + " missing, " + std::to_string(mismatched) + " mismatched");
		Check(outcomes["failed"] == sum_failed && outcomes["lease_expired"] == 0,
		      "db: failed runs equal the sessions' fails, no lease expired",
		      std::to_string(outcomes["failed"]) + " failed, " + std::to_string(outcomes["lease_expired"]) +
		          " lease_expired, client " + std::to_string(sum_failed) + " fails");

		// Runs of one task never overlap in time: each starts after the previous one ended.
		pqxx::row overlap = tx.exec_params1(
		    "SELECT count(*) FROM ("
		    "  SELECT r.started_at, lag(r.ended_at) OVER (PARTITION BY r.task_id ORDER BY r.started_at) AS prev_end "
		    "  FROM belay.runs r JOIN belay.tasks t USING (task_id) WHERE t.queue = $1) s "
		    "WHERE s.started_at < s.prev_end",
		    kQueue);
		Check(overlap[0].as<long>() == 0, "db: no two runs of a task overlap in time",
		      Count(overlap, 0) + " overlaps");

		// Each task's result names the session that completed it; its attempt counts its failures.
		pqxx::result results = tx.exec_params(
		    "SELECT task_id::text, result->>'by', attempt, (params->>'n')::int FROM belay.tasks WHERE queue = $1",
		    kQueue);
		long wrong_by = 0, wrong_attempt = 0, wrong_n = 0;
		samples.clear();
		for (const auto &row : results) {
			std::string task = row[0].as<std::string>();
			auto it = ledger.tasks.find(task);
			std::string by = row[1].is_null() ? "(null)" : row[1].as<std::string>();
			if (it == ledger.tasks.end()) {
				++wrong_by;
				sample("task " + task + " never claimed by a session");
				continue;
			}
			if (by != "w" + std::to_string(it->second.completed_by)) {
				++wrong_by;
				sample("task " + task + " result says by " + by + ", client says w" +
				       std::to_string(it->second.completed_by));
			}
			if (row[2].as<int>() != 1 + it->second.fails) {
				++wrong_attempt;
				sample("task " + task + " at attempt " + row[2].as<std::string>() + " after " +
				       std::to_string(it->second.fails) + " fails");
			}
			auto n = ledger.task_n.find(task);
			if (n == ledger.task_n.end() || row[3].is_null() || row[3].as<int>() != n->second)
				++wrong_n;
		}
		for (const auto &s : samples)
			std::cout << "   " << s << "\n";
		Check(wrong_by == 0 && static_cast<long>(results.size()) == opt.tasks,
		      "db: every task's result names the session that completed it", std::to_string(wrong_by) + " wrong");
		Check(wrong_attempt == 0 && wrong_n == 0, "db: attempts count the failures, params are intact",
		      std::to_string(wrong_attempt) + " wrong attempts, " + std::to_string(wrong_n) + " wrong params");
		tx.commit();
	} catch (const std::exception &e) {
		std::cout << "verification query failed: " << Describe(e) << "\n";
		Check(false, "db: verification queries ran");
	}

	std::cout << "total time " << std::chrono::duration<double>(Clock::now() - t_start).count() << " s\n";
	return race::Tally();
}
