// belay::Client: the producer's and operator's side.
#include "belay/client.hpp"

#include "session.hpp"

#include <thread>

namespace belay {

struct Client::State {
	explicit State(const std::string &conninfo) : session(conninfo) {}
	Session session;
};

namespace {

Json ParseJson(const pqxx::field &field) { return field.is_null() ? Json() : Json::parse(field.c_str()); }

std::optional<std::string> OptString(const pqxx::field &field) {
	if (field.is_null())
		return std::nullopt;
	return std::string(field.c_str());
}

TaskInfo ReadTask(const pqxx::row &row) {
	TaskInfo info;
	info.task_id = row[0].c_str();
	info.queue = row[1].c_str();
	info.task_name = row[2].c_str();
	info.state = row[3].c_str();
	info.attempt = row[4].as<int>();
	info.max_attempts = row[5].as<int>();
	info.params = ParseJson(row[6]);
	info.result = ParseJson(row[7]);
	info.error = ParseJson(row[8]);
	info.parent_task_id = OptString(row[9]);
	info.created_at = row[10].c_str();
	info.available_at = row[11].c_str();
	info.finished_at = OptString(row[12]);
	return info;
}

std::vector<Spawned> ReadSpawned(const pqxx::result &rows) {
	std::vector<Spawned> out;
	out.reserve(rows.size());
	for (const auto &row : rows)
		out.push_back(Spawned{row[0].c_str(), row[1].as<bool>()});
	return out;
}

// Wakes wait_for when a watched task ends.
class FinishedReceiver : public pqxx::notification_receiver {
public:
	FinishedReceiver(pqxx::connection_base &connection, std::string task_id)
	    : pqxx::notification_receiver(connection, "belay_finished"), task_id_(std::move(task_id)) {}
	void operator()(const std::string &payload, int) override {
		if (payload == task_id_)
			finished = true;
	}
	bool finished = false;

private:
	std::string task_id_;
};

} // namespace

Client::Client(const std::string &conninfo) : state_(std::make_unique<State>(conninfo)) {
	state_->session.Connection(); // fail fast on a bad conninfo
}

Client::~Client() = default;

pqxx::connection &Client::connection() { return state_->session.Connection(); }

void Client::create_queue(const std::string &queue, const Json &policy) {
	state_->session.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_create_queue", queue, policy.dump()); });
}

void Client::drop_queue(const std::string &queue) {
	state_->session.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_drop_queue", queue); });
}

Spawned Client::spawn(const std::string &queue, const std::string &task_name, const Json &params,
                      const SpawnOptions &options) {
	return state_->session.Transact([&](pqxx::work &tx) { return spawn(tx, queue, task_name, params, options); });
}

Spawned Client::spawn(pqxx::transaction_base &tx, const std::string &queue, const std::string &task_name,
                      const Json &params, const SpawnOptions &options) {
	return Translate([&] {
		// Prepared statements belong to a connection; the caller's may not have ours.
		pqxx::result rows = tx.exec_params("SELECT task_id, created FROM belay.spawn($1, $2, $3::jsonb, $4::jsonb)",
		                                   queue, task_name, params.dump(), options.ToJson().dump());
		return ReadSpawned(rows).at(0);
	});
}

std::vector<Spawned> Client::spawn_many(const std::string &queue, const std::string &task_name,
                                        const std::vector<Json> &params, const SpawnOptions &options) {
	Json array = params;
	return state_->session.Transact([&](pqxx::work &tx) {
		return ReadSpawned(tx.exec_prepared("belay_spawn_many", queue, task_name, array.dump(), options.ToJson().dump()));
	});
}

int Client::emit_event(const std::string &queue, const std::string &event, const Json &payload) {
	std::optional<std::string> text;
	if (!payload.is_null())
		text = payload.dump();
	return state_->session.Transact(
	    [&](pqxx::work &tx) { return tx.exec_prepared1("belay_emit_event", queue, event, OrNull(text))[0].as<int>(); });
}

int Client::cancel(const std::string &task_id) {
	return state_->session.Transact(
	    [&](pqxx::work &tx) { return tx.exec_prepared1("belay_cancel", task_id)[0].as<int>(); });
}

void Client::retry(const std::string &task_id) {
	state_->session.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_retry", task_id); });
}

std::optional<TaskInfo> Client::task(const std::string &task_id) {
	return state_->session.Transact([&](pqxx::work &tx) -> std::optional<TaskInfo> {
		pqxx::result rows = tx.exec_prepared("belay_task", task_id);
		if (rows.empty())
			return std::nullopt;
		return ReadTask(rows[0]);
	});
}

long Client::cleanup(const std::optional<std::string> &queue, std::chrono::seconds older_than) {
	return state_->session.Transact([&](pqxx::work &tx) {
		return tx.exec_prepared1("belay_cleanup", OrNull(queue), std::to_string(older_than.count()))[0].as<long>();
	});
}

TaskInfo Client::wait_for(const std::string &task_id, std::chrono::milliseconds timeout) {
	auto deadline = std::chrono::steady_clock::now() + timeout;
	// LISTEN first, then watch: an end that commits in between is still seen by the check.
	FinishedReceiver receiver(state_->session.Connection(), task_id);
	state_->session.Transact([&](pqxx::work &tx) { tx.exec_prepared("belay_watch", task_id); });
	for (;;) {
		std::optional<TaskInfo> info = task(task_id);
		if (!info)
			throw InvalidArgument("task " + task_id + " does not exist");
		if (info->terminal())
			return *info;
		auto now = std::chrono::steady_clock::now();
		if (now >= deadline)
			throw Error("timed out waiting for task " + task_id + " (state " + info->state + ")");
		// The notification wakes us; the slice bounds a missed one (a dropped connection).
		auto slice = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::seconds(1));
		auto micros = std::chrono::duration_cast<std::chrono::microseconds>(slice).count();
		receiver.finished = false;
		Translate([&] { return state_->session.Connection().await_notification(micros / 1000000, micros % 1000000); });
	}
}

} // namespace belay
