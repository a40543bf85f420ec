// belay::Worker: a dispatcher that claims for free slots (woken by LISTEN belay, a freed
// slot or a poll), N executor threads that run handlers, and a heartbeat thread. Every
// thread has its own connection.
#include "belay/client/worker.hpp"

#include "session.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <cxxabi.h>
#include <deque>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <mutex>
#include <poll.h>
#include <thread>
#include <typeinfo>
#include <unistd.h>
#include <vector>

namespace belay {
namespace {

std::string DefaultWorkerId() {
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	return std::string(host) + ":" + std::to_string(getpid());
}

std::string TypeName(const std::type_info &type) {
	int status = 0;
	char *name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
	std::string out = status == 0 && name ? name : type.name();
	std::free(name);
	return out;
}

// Invalid UTF-8 in an exception's message or a result must not end the process.
std::string DumpJson(const Json &value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A claimed task's JSON column. Most headers and checkpoints are empty: skip the parser.
Json ParseClaimed(const pqxx::field &field) {
	const char *text = field.c_str();
	return std::strcmp(text, "{}") == 0 ? Json::object() : Json::parse(text);
}

// A thread body that must not take the process down: an escaping exception is logged.
template <typename F>
void Guarded(const char *what, F &&body) {
	try {
		body();
	} catch (const std::exception &e) {
		std::cerr << "belay worker: " << what << " thread stopped: " << e.what() << "\n";
	} catch (...) {
		std::cerr << "belay worker: " << what << " thread stopped by a non-standard exception\n";
	}
}

// Sets a flag when the queue this worker serves gains work.
class QueueReceiver : public pqxx::notification_receiver {
public:
	QueueReceiver(pqxx::connection_base &connection, std::string queue)
	    : pqxx::notification_receiver(connection, "belay"), queue_(std::move(queue)) {}
	void operator()(const std::string &payload, int) override {
		if (payload == queue_)
			woken = true;
	}
	bool woken = false;

private:
	std::string queue_;
};

} // namespace

struct Worker::Impl {
	explicit Impl(WorkerOptions opts) : options(std::move(opts)) {
		if (options.worker_id.empty())
			options.worker_id = DefaultWorkerId();
		if (options.concurrency < 1)
			throw InvalidArgument("WorkerOptions.concurrency must be at least 1");
		if (options.prefetch < 0)
			throw InvalidArgument("WorkerOptions.prefetch must not be negative");
		if (!(options.lease_seconds > 0))
			throw InvalidArgument("WorkerOptions.lease_seconds must be greater than 0");
		if (pipe(wake_pipe) != 0)
			throw Error("cannot create the worker's wake-up pipe");
		for (int fd : wake_pipe)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	~Impl() {
		close(wake_pipe[0]);
		close(wake_pipe[1]);
	}

	// Async-signal-safe: an atomic store and a write.
	void RequestStop() {
		stopping = true;
		Wake();
	}
	// One byte in the pipe is enough: the dispatcher clears wake_pending before it looks
	// at the state again, so a finished task need not write one each.
	void Wake() {
		if (wake_pending.exchange(true))
			return;
		char byte = 1;
		[[maybe_unused]] ssize_t ignored = write(wake_pipe[1], &byte, 1);
	}

	void Dispatch();
	void Execute();
	// How many tasks the dispatcher should claim now (0: none). Call with jobs_mutex held.
	int SlotsToClaim() const;
	void CompleteBatches();
	void Heartbeat();
	void RunJob(Session &session, ClaimedTask job);
	bool Finish(Session &session, const char *statement, const std::string &run_id, const std::string &value,
	            bool final_failure);
	void WaitForWake(int socket);

	WorkerOptions options;
	std::map<std::string, Handler> handlers;
	std::atomic<bool> stopping{false};
	int wake_pipe[2] = {-1, -1};
	std::atomic<bool> wake_pending{false}; // lock-free: Wake() runs in signal handlers

	std::mutex jobs_mutex;
	std::condition_variable jobs_changed; // busy reached 0 (stop() waits for it)
	// Executors wait here for queued work. One is woken per claim, and each that takes a
	// task wakes the next while work remains: short handlers then keep a few threads
	// busy instead of waking every executor for every claim.
	std::condition_variable work_queued;
	std::deque<ClaimedTask> jobs;
	int busy = 0; // claimed and not yet finished (queued or running)
	bool executors_exit = false;

	// Finished handlers' results, sent in batches by the completer thread.
	std::mutex completions_mutex;
	std::condition_variable completions_changed;
	std::vector<std::pair<std::string, Json>> completions; // run_id, result
	bool completer_exit = false;
	// Runs whose handler returned but whose completion is not yet committed. One
	// completer batch of them is free: the dispatcher claims the next tasks while the
	// completer commits the last ones, so claims and completions overlap. Beyond that they
	// count against concurrency + prefetch, or a completer that falls behind would let the
	// dispatcher claim without bound.
	static constexpr int kMaxCompletionBatch = 1000;
	std::atomic<int> completing{0};

	// Every claimed run until its handler returns (queued ones too, so a prefetched task
	// keeps its lease while it waits): heartbeated, and told when its lease is lost.
	std::mutex active_mutex;
	std::map<std::string, std::shared_ptr<std::atomic<int>>> active;
	std::condition_variable heartbeat_exit_changed;
	bool heartbeat_exit = false;

	std::atomic<uint64_t> claimed{0}, completed{0}, failed{0}, suspended{0}, lost{0};
};

namespace {
std::atomic<Worker::Impl *> signal_target{nullptr};
extern "C" void OnStopSignal(int) {
	if (Worker::Impl *impl = signal_target.load())
		impl->RequestStop();
}
} // namespace

void Worker::Impl::WaitForWake(int socket) {
	pollfd fds[2] = {{wake_pipe[0], POLLIN, 0}, {socket, POLLIN, 0}};
	poll(fds, socket >= 0 ? 2 : 1, static_cast<int>(options.poll_interval.count()));
	char drain[64];
	while (read(wake_pipe[0], drain, sizeof drain) > 0) {
	}
}

void Worker::Impl::Dispatch() {
	Session session(options.conninfo);
	std::unique_ptr<QueueReceiver> receiver;
	const std::string lease = FormatNumber(options.lease_seconds);
	for (;;) {
		// Cleared before stopping is read: RequestStop sets stopping before it looks at
		// wake_pending, so a stop that writes no byte is seen here.
		wake_pending = false; // from here on, a change that should wake us writes a byte
		if (stopping)
			break;
		try {
			if (!receiver)
				Translate([&] { receiver = std::make_unique<QueueReceiver>(session.Connection(), options.queue); });
			int free_slots;
			{
				std::lock_guard<std::mutex> lock(jobs_mutex);
				free_slots = SlotsToClaim();
			}
			size_t got = 0;
			if (free_slots > 0) {
				// One claim for all the free slots.
				pqxx::result rows = session.Transact([&](pqxx::work &tx) {
					return tx.exec_prepared("belay_claim", options.queue, options.worker_id, std::to_string(free_slots),
					                        lease);
				});
				got = rows.size();
				// Parsed before taking the locks: the executors keep taking queued work meanwhile.
				std::vector<ClaimedTask> fresh;
				fresh.reserve(got);
				for (const auto &row : rows) {
					ClaimedTask job;
					job.run_id = row[0].c_str();
					job.task_id = row[1].c_str();
					job.task_name = row[2].c_str();
					job.params = ParseClaimed(row[3]);
					job.headers = ParseClaimed(row[4]);
					job.attempt = row[5].as<int>();
					job.checkpoints = ParseClaimed(row[6]);
					fresh.push_back(std::move(job));
				}
				{
					std::lock_guard<std::mutex> active_lock(active_mutex);
					for (const ClaimedTask &job : fresh)
						active[job.run_id] = std::make_shared<std::atomic<int>>(static_cast<int>(RunStatus::Live));
				}
				std::lock_guard<std::mutex> lock(jobs_mutex);
				for (ClaimedTask &job : fresh)
					jobs.push_back(std::move(job));
				busy += static_cast<int>(got);
				claimed += got;
			}
			if (got > 0)
				work_queued.notify_one();
			if (got > 0 && static_cast<int>(got) == free_slots)
				continue; // there may be more: claim again as soon as a slot frees
			receiver->woken = false;
			Translate([&] { return session.Connection().get_notifs(); });
			if (receiver->woken)
				continue;
			WaitForWake(session.Connection().sock());
			Translate([&] { return session.Connection().get_notifs(); });
		} catch (const ConnectionError &e) {
			// Tasks of a claim whose outcome we lost come back when their lease expires.
			receiver.reset();
			session.Drop();
			std::cerr << "belay worker " << options.worker_id << ": " << e.what() << "; reconnecting\n";
			std::this_thread::sleep_for(options.reconnect_delay);
		} catch (const std::exception &e) {
			std::cerr << "belay worker " << options.worker_id << ": claim failed: " << e.what() << "\n";
			std::this_thread::sleep_for(options.poll_interval);
		}
	}
}

void Worker::Impl::Execute() {
	Session session(options.conninfo);
	bool ran_one = false;
	for (;;) {
		ClaimedTask job;
		bool top_up;
		{
			std::unique_lock<std::mutex> lock(jobs_mutex);
			// One critical section gives back the slot of the task just run and takes the next.
			if (ran_one) {
				--busy;
				if (busy == 0)
					jobs_changed.notify_all(); // stop() waits for this
				if (SlotsToClaim() > 0)
					Wake(); // the dispatcher would claim now
			}
			work_queued.wait(lock, [&] { return !jobs.empty() || executors_exit; });
			if (executors_exit)
				return; // past the shutdown deadline: queued tasks come back when their leases expire
			job = std::move(jobs.front());
			jobs.pop_front();
			if (!jobs.empty())
				work_queued.notify_one(); // the next executor, for the rest
			// The last queued task taken: the dispatcher, which was waiting for half its
			// capacity while work was queued, may claim for the free slots now.
			top_up = jobs.empty() && SlotsToClaim() > 0;
		}
		if (top_up)
			Wake();
		RunJob(session, std::move(job));
		ran_one = true;
	}
}

int Worker::Impl::SlotsToClaim() const {
	int completing_beyond_a_batch = std::max(completing.load() - kMaxCompletionBatch, 0);
	int free_slots = options.concurrency + options.prefetch - busy - completing_beyond_a_batch;
	// While claimed work still waits here, top up in large bites rather than a claim() per
	// freed slot: a claim costs about the same for 10 tasks as for 500.
	if (!jobs.empty() && free_slots < (options.concurrency + options.prefetch) / 2)
		return 0;
	return std::min(free_slots, 1000); // claim() takes at most 1000 at a time
}

// complete or fail, retried across reconnects: the run's fencing makes a repeat harmless.
bool Worker::Impl::Finish(Session &session, const char *statement, const std::string &run_id,
                          const std::string &value, bool final_failure) {
	const bool is_fail = std::string(statement) == "belay_fail";
	for (int attempt = 0; attempt < 5; ++attempt) {
		try {
			session.Transact([&](pqxx::work &tx) {
				if (is_fail)
					tx.exec_prepared(statement, run_id, value, final_failure ? "true" : "false");
				else
					tx.exec_prepared(statement, run_id, value);
			});
			return true;
		} catch (const LeaseLost &) {
			return false; // someone else holds it now, or an earlier try got through
		} catch (const Cancelled &) {
			return false;
		} catch (const ConnectionError &e) {
			std::cerr << "belay worker " << options.worker_id << ": " << e.what() << "; retrying\n";
			std::this_thread::sleep_for(options.reconnect_delay);
		} catch (const std::exception &e) {
			// Refused for another reason (say, a result PostgreSQL's jsonb rejects): this
			// task's lease will expire and it will be retried; the worker goes on.
			std::cerr << "belay worker " << options.worker_id << ": " << statement << " of run " << run_id
			          << " failed: " << e.what() << "\n";
			return false;
		}
	}
	return false; // the lease will expire and the task be retried
}

void Worker::Impl::RunJob(Session &session, ClaimedTask job) {
	std::shared_ptr<std::atomic<int>> status;
	{
		std::lock_guard<std::mutex> lock(active_mutex);
		status = active[job.run_id];
		if (!status)
			status = active[job.run_id] = std::make_shared<std::atomic<int>>(static_cast<int>(RunStatus::Live));
	}
	TaskContext context(session, options.queue, job, status);
	auto handler = handlers.find(job.task_name);
	if (status->load() != static_cast<int>(RunStatus::Live)) {
		++lost; // its lease was lost while it waited in the queue: someone else has it
		std::lock_guard<std::mutex> lock(active_mutex);
		active.erase(job.run_id);
		return;
	}
	try {
		if (handler == handlers.end())
			throw Error("no handler for task name \"" + job.task_name + "\" on worker " + options.worker_id);
		Json result = handler->second(context);
		context.ThrowIfNotLive();
		{
			std::lock_guard<std::mutex> lock(completions_mutex);
			completions.emplace_back(job.run_id, std::move(result));
			++completing;
		}
		completions_changed.notify_one();
	} catch (const Suspended &) {
		++suspended;
	} catch (const LeaseLost &) {
		++lost;
	} catch (const Cancelled &) {
		++lost;
	} catch (const std::exception &e) {
		Json error = {{"kind", handler == handlers.end() ? "unknown_task" : TypeName(typeid(e))},
		              {"message", e.what()},
		              {"worker", options.worker_id}};
		if (Finish(session, "belay_fail", job.run_id, DumpJson(error), false))
			++failed;
		else
			++lost;
	} catch (...) {
		Json error = {{"kind", "unknown"}, {"message", "the handler threw a non-standard exception"}};
		if (Finish(session, "belay_fail", job.run_id, DumpJson(error), false))
			++failed;
		else
			++lost;
	}
	std::lock_guard<std::mutex> lock(active_mutex);
	active.erase(job.run_id);
}

void Worker::Impl::CompleteBatches() {
	Session session(options.conninfo);
	for (;;) {
		std::vector<std::pair<std::string, Json>> batch;
		{
			std::unique_lock<std::mutex> lock(completions_mutex);
			completions_changed.wait(lock, [&] { return !completions.empty() || completer_exit; });
			if (completions.empty())
				return;
			size_t take = std::min(completions.size(), static_cast<size_t>(kMaxCompletionBatch));
			batch.assign(std::make_move_iterator(completions.begin()),
			             std::make_move_iterator(completions.begin() + static_cast<long>(take)));
			completions.erase(completions.begin(), completions.begin() + static_cast<long>(take));
		}
		std::string run_ids = "{";
		run_ids.reserve(2 + batch.size() * 37);
		Json results = Json::array();
		bool any_result = false;
		for (size_t i = 0; i < batch.size(); ++i) {
			if (i)
				run_ids += ',';
			run_ids += batch[i].first;
			any_result = any_result || !batch[i].second.is_null();
			results.push_back(std::move(batch[i].second));
		}
		run_ids += "}";
		// Handlers that return nothing (the common case) send no results array at all.
		const std::string results_text = any_result ? DumpJson(results) : std::string();
		bool sent = false;
		for (int attempt = 0; attempt < 5 && !sent; ++attempt) {
			try {
				pqxx::result rows = session.Transact([&](pqxx::work &tx) {
					return any_result ? tx.exec_prepared("belay_complete_many", run_ids, results_text)
					                  : tx.exec_prepared("belay_complete_many_no_results", run_ids);
				});
				completed += rows[0][0].as<uint64_t>();
				lost += rows[0][1].as<uint64_t>(); // leases that expired, or tasks cancelled, before the batch landed
				sent = true;
			} catch (const ConnectionError &e) {
				std::cerr << "belay worker " << options.worker_id << ": " << e.what() << "; retrying completions\n";
				std::this_thread::sleep_for(options.reconnect_delay);
			} catch (const std::exception &e) {
				// Not the connection: complete them one by one (an extension older than
				// complete_many, or one bad result), so one fault costs one task at most.
				std::cerr << "belay worker " << options.worker_id << ": completing a batch failed (" << e.what()
				          << "); completing one by one\n";
				for (size_t i = 0; i < batch.size(); ++i) {
					if (Finish(session, "belay_complete", batch[i].first, DumpJson(results[i]), false))
						++completed;
					else
						++lost;
				}
				sent = true;
			}
		}
		if (!sent)
			lost += batch.size(); // the leases expire and the tasks are retried
		completing -= static_cast<int>(batch.size());
		Wake(); // capacity is free again: the dispatcher may claim
	}
}

void Worker::Impl::Heartbeat() {
	Session session(options.conninfo);
	auto interval = std::chrono::milliseconds(
	    std::max<long>(100, static_cast<long>(options.lease_seconds * options.heartbeat_fraction * 1000)));
	for (;;) {
		std::vector<std::pair<std::string, std::shared_ptr<std::atomic<int>>>> runs;
		{
			std::unique_lock<std::mutex> lock(active_mutex);
			heartbeat_exit_changed.wait_for(lock, interval, [&] { return heartbeat_exit; });
			if (heartbeat_exit)
				return;
			runs.assign(active.begin(), active.end()); // beat without holding the lock
		}
		for (auto &[run_id, status] : runs) {
			if (status->load() != static_cast<int>(RunStatus::Live))
				continue;
			try {
				session.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_heartbeat", run_id, nullptr); });
			} catch (const LeaseLost &) {
				*status = static_cast<int>(RunStatus::LeaseLost);
			} catch (const Cancelled &) {
				*status = static_cast<int>(RunStatus::Cancelled);
			} catch (const std::exception &e) {
				std::cerr << "belay worker " << options.worker_id << ": heartbeat failed: " << e.what() << "\n";
				break; // try again next round
			}
		}
	}
}

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Worker::~Worker() = default;

void Worker::handle(const std::string &task_name, Handler handler) { impl_->handlers[task_name] = std::move(handler); }

void Worker::stop() { impl_->RequestStop(); }

WorkerStats Worker::stats() const {
	return WorkerStats{impl_->claimed, impl_->completed, impl_->failed, impl_->suspended, impl_->lost};
}

void Worker::run() {
	Impl &impl = *impl_;
	struct sigaction previous_int {}, previous_term {};
	if (impl.options.handle_signals) {
		signal_target = &impl;
		struct sigaction action {};
		action.sa_handler = OnStopSignal;
		sigemptyset(&action.sa_mask);
		sigaction(SIGINT, &action, &previous_int);
		sigaction(SIGTERM, &action, &previous_term);
	}
	impl.executors_exit = false;
	impl.heartbeat_exit = false;
	impl.completer_exit = false;
	std::thread completer([&] { Guarded("completer", [&] { impl.CompleteBatches(); }); });
	std::vector<std::thread> executors;
	for (int i = 0; i < impl.options.concurrency; ++i)
		executors.emplace_back([&] { Guarded("executor", [&] { impl.Execute(); }); });
	std::thread heartbeat([&] { Guarded("heartbeat", [&] { impl.Heartbeat(); }); });

	impl.Dispatch(); // returns once stopping

	// Stop claiming; let what runs finish, up to the deadline.
	auto deadline = std::chrono::steady_clock::now() + impl.options.shutdown_timeout;
	{
		std::unique_lock<std::mutex> lock(impl.jobs_mutex);
		impl.jobs_changed.wait_until(lock, deadline, [&] { return impl.busy == 0; });
		impl.executors_exit = true;
	}
	impl.work_queued.notify_all();
	{
		// Past the deadline, handlers still running can write nothing more (and are no
		// longer heartbeated); their tasks are retried when the leases expire.
		std::lock_guard<std::mutex> lock(impl.active_mutex);
		for (auto &entry : impl.active)
			*entry.second = static_cast<int>(RunStatus::LeaseLost);
	}
	for (auto &thread : executors)
		thread.join(); // a handler that ignores its status keeps run() waiting here
	{
		std::lock_guard<std::mutex> lock(impl.active_mutex);
		impl.heartbeat_exit = true;
	}
	impl.heartbeat_exit_changed.notify_all();
	heartbeat.join();
	{
		std::lock_guard<std::mutex> lock(impl.completions_mutex);
		impl.completer_exit = true; // it sends what is left, then returns
	}
	impl.completions_changed.notify_all();
	completer.join();
	if (impl.options.handle_signals) {
		sigaction(SIGINT, &previous_int, nullptr);
		sigaction(SIGTERM, &previous_term, nullptr);
		signal_target = nullptr;
	}
	impl.stopping = false; // run() may be called again
}

} // namespace belay
