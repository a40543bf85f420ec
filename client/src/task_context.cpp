// TaskContext: durable steps and the suspending calls, each one SQL call on the worker
// thread's own connection.
#include "belay/client/task_context.hpp"

#include "session.hpp"

namespace belay {

namespace {
// A timeout as the numeric text the SQL functions take; none: wait for ever.
std::optional<std::string> Seconds(std::optional<std::chrono::duration<double>> timeout) {
	if (!timeout)
		return std::nullopt;
	return FormatNumber(timeout->count());
}
} // namespace

TaskContext::TaskContext(Session &session, std::string queue, ClaimedTask task,
                         std::shared_ptr<std::atomic<int>> status)
    : session_(session), queue_(std::move(queue)), task_(std::move(task)), status_(std::move(status)) {
	if (!task_.checkpoints.is_object())
		task_.checkpoints = Json::object();
}

void TaskContext::ThrowIfNotLive() const {
	switch (static_cast<RunStatus>(status_->load())) {
	case RunStatus::Live:
		return;
	case RunStatus::LeaseLost:
		throw LeaseLost("run " + task_.run_id + " lost its lease; the handler can make no more changes", "BL001");
	case RunStatus::Cancelled:
		throw Cancelled("task " + task_.task_id + " was cancelled", "BL002");
	}
}

template <typename F>
auto TaskContext::Call(F &&fn) -> decltype(fn()) {
	ThrowIfNotLive();
	try {
		return fn();
	} catch (const LeaseLost &) {
		*status_ = static_cast<int>(RunStatus::LeaseLost);
		throw;
	} catch (const Cancelled &) {
		*status_ = static_cast<int>(RunStatus::Cancelled);
		throw;
	}
}

std::string TaskContext::StepKey(const std::string &name) {
	int uses = ++step_uses_[name];
	return uses == 1 ? name : name + "#" + std::to_string(uses);
}

const Json *TaskContext::FindStep(const std::string &key) const {
	auto found = task_.checkpoints.find(key);
	return found == task_.checkpoints.end() ? nullptr : &*found;
}

void TaskContext::RecordStep(const std::string &key, const Json &value) {
	Call([&] {
		session_.Transact(
		    [&](pqxx::work &tx) { tx.exec_prepared("belay_set_checkpoint", task_.run_id, key, value.dump()); });
	});
	task_.checkpoints[key] = value;
}

void TaskContext::sleep_for(const std::string &name, std::chrono::duration<double> duration) {
	std::string key = StepKey(name);
	bool suspended = Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			return tx.exec_prepared1("belay_sleep_for", task_.run_id, key, FormatNumber(duration.count()))[0].as<bool>();
		});
	});
	if (suspended)
		throw Suspended{key};
}

void TaskContext::sleep_until(const std::string &name, Clock::time_point wake_at) {
	std::string key = StepKey(name);
	bool suspended = Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			return tx.exec_prepared1("belay_sleep_until", task_.run_id, key, FormatTimestamp(wake_at))[0].as<bool>();
		});
	});
	if (suspended)
		throw Suspended{key};
}

EventResult TaskContext::await_event(const std::string &name, const std::string &event,
                                     std::optional<std::chrono::duration<double>> timeout) {
	std::string key = StepKey(name);
	std::optional<std::string> seconds = Seconds(timeout);
	struct Row {
		bool suspended;
		EventResult result;
	};
	Row row = Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			pqxx::row r = tx.exec_prepared1("belay_await_event", task_.run_id, key, event, OrNull(seconds));
			Row out{r[0].as<bool>(), {}};
			out.result.payload = r[1].is_null() ? Json() : Json::parse(r[1].c_str());
			out.result.timed_out = r[2].as<bool>();
			return out;
		});
	});
	if (row.suspended)
		throw Suspended{key};
	return row.result;
}

int TaskContext::emit_event(const std::string &event, const Json &payload) {
	std::optional<std::string> text;
	if (!payload.is_null())
		text = payload.dump();
	return Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			return tx.exec_prepared1("belay_emit_event", queue_, event, OrNull(text))[0].as<int>();
		});
	});
}

std::string TaskContext::spawn_child(const std::string &name, const std::string &task_name, const Json &params,
                                     const SpawnOptions &options) {
	std::string key = StepKey(name);
	return Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			return std::string(tx.exec_prepared1("belay_spawn_child", task_.run_id, key, task_name, params.dump(),
			                                     options.ToJson().dump())[0]
			                       .c_str());
		});
	});
}

JoinResult TaskContext::join(const std::string &name, const std::string &child_task_id,
                             std::optional<std::chrono::duration<double>> timeout) {
	std::string key = StepKey(name);
	std::optional<std::string> seconds = Seconds(timeout);
	struct Row {
		bool suspended;
		JoinResult result;
	};
	Row row = Call([&] {
		return session_.Transact([&](pqxx::work &tx) {
			pqxx::row r = tx.exec_prepared1("belay_join", task_.run_id, key, child_task_id, OrNull(seconds));
			Row out{r[0].as<bool>(), {}};
			out.result.state = r[1].is_null() ? "" : r[1].c_str();
			out.result.result = r[2].is_null() ? Json() : Json::parse(r[2].c_str());
			out.result.error = r[3].is_null() ? Json() : Json::parse(r[3].c_str());
			out.result.timed_out = !out.suspended && out.result.state.empty();
			return out;
		});
	});
	if (row.suspended)
		throw Suspended{key};
	return row.result;
}

void TaskContext::heartbeat(std::optional<double> lease_seconds) {
	std::optional<std::string> seconds;
	if (lease_seconds)
		seconds = FormatNumber(*lease_seconds);
	Call([&] {
		session_.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_heartbeat", task_.run_id, OrNull(seconds)); });
	});
}

} // namespace belay
