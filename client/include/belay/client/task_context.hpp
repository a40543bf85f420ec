// What a handler sees of its task, and the durable operations it can perform.
#pragma once

#include "belay/client/errors.hpp"
#include "belay/client/types.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace belay {

class Session;

// Thrown by a TaskContext call that suspended the run (sleep, await, join): the handler
// must unwind. Not a std::exception, so `catch (const std::exception &)` in a handler does
// not swallow it. The SQL call has already suspended the run; the Worker only unwinds.
struct Suspended {
	std::string step;
};

// Why a run can do nothing more: its lease was lost (BL001) or its task cancelled (BL002).
enum class RunStatus : int { Live = 0, LeaseLost = 1, Cancelled = 2 };

struct ClaimedTask {
	std::string run_id;
	std::string task_id;
	std::string task_name;
	Json params;
	Json headers;
	int attempt = 0;
	Json checkpoints; // {step: value} of the finished steps
};

struct EventResult {
	bool timed_out = false;
	Json payload; // null when timed out, or when emitted without a payload
};

struct JoinResult {
	bool timed_out = false;
	std::string state; // completed, failed or cancelled; empty when timed out
	Json result;
	Json error;
};

class TaskContext {
public:
	// status: shared with whoever heartbeats the run (the Worker); one of RunStatus.
	TaskContext(Session &session, std::string queue, ClaimedTask task,
	            std::shared_ptr<std::atomic<int>> status = std::make_shared<std::atomic<int>>(0));

	const std::string &task_id() const { return task_.task_id; }
	const std::string &run_id() const { return task_.run_id; }
	const std::string &task_name() const { return task_.task_name; }
	const std::string &queue() const { return queue_; }
	int attempt() const { return task_.attempt; }
	const Json &params() const { return task_.params; }
	const Json &headers() const { return task_.headers; }

	// A durable step: runs fn once and records its value; a re-run of the handler gets the
	// recorded value back without running fn. The value must convert to and from JSON.
	// A name used twice in one run gets a stable suffix ("name#2", "name#3", ...).
	template <typename F>
	auto step(const std::string &name, F &&fn) -> std::decay_t<decltype(fn())>;

	// Suspend the run until the time (the first run to reach the step fixes it); a re-run
	// after the wake time goes on.
	void sleep_for(const std::string &name, std::chrono::duration<double> duration);
	void sleep_until(const std::string &name, Clock::time_point wake_at);
	// The payload of an event of this task's queue; suspends until it is emitted or the
	// timeout passes (no timeout: wait for ever).
	EventResult await_event(const std::string &name, const std::string &event,
	                        std::optional<std::chrono::duration<double>> timeout = std::nullopt);
	int emit_event(const std::string &event, const Json &payload = nullptr);
	// Spawns a child once per step name; returns its task id.
	std::string spawn_child(const std::string &name, const std::string &task_name, const Json &params = Json::object(),
	                        const SpawnOptions &options = {});
	// The child's outcome; suspends until it ends or the timeout passes.
	JoinResult join(const std::string &name, const std::string &child_task_id,
	                std::optional<std::chrono::duration<double>> timeout = std::nullopt);
	// Extends the lease now (the Worker also heartbeats on its own).
	void heartbeat(std::optional<double> lease_seconds = std::nullopt);

	// Set by the Worker's heartbeats; once not Live, every call throws LeaseLost/Cancelled.
	std::atomic<int> &status() { return *status_; }
	void ThrowIfNotLive() const;

private:
	std::string StepKey(const std::string &name);
	const Json *FindStep(const std::string &key) const;
	void RecordStep(const std::string &key, const Json &value);
	template <typename F>
	auto Call(F &&fn) -> decltype(fn());

	Session &session_;
	std::string queue_;
	ClaimedTask task_;
	std::map<std::string, int> step_uses_;
	std::shared_ptr<std::atomic<int>> status_;
};

template <typename F>
auto TaskContext::step(const std::string &name, F &&fn) -> std::decay_t<decltype(fn())> {
	using T = std::decay_t<decltype(fn())>;
	std::string key = StepKey(name);
	if constexpr (std::is_void_v<T>) {
		if (FindStep(key))
			return;
		ThrowIfNotLive();
		fn();
		RecordStep(key, nullptr);
	} else {
		if (const Json *cached = FindStep(key))
			return cached->get<T>();
		ThrowIfNotLive();
		T value = fn();
		RecordStep(key, Json(value));
		return value;
	}
}

} // namespace belay
