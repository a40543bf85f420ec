// belay's C++ client: enqueue and inspect work (Client), and run it (Worker, TaskContext).
// One Client owns one connection and is used by one thread at a time.
#pragma once

#include "belay/client/errors.hpp"
#include "belay/client/task_context.hpp"
#include "belay/client/types.hpp"
#include "belay/client/worker.hpp"

#include <pqxx/pqxx>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace belay {

// The conninfo or URL in BELAY_DATABASE_URL, or "" (libpq's PG* variables).
std::string DefaultConnectionString();

class Client {
public:
	explicit Client(const std::string &conninfo = DefaultConnectionString());
	~Client();
	Client(const Client &) = delete;
	Client &operator=(const Client &) = delete;

	void create_queue(const std::string &queue, const Json &policy = Json::object());
	void drop_queue(const std::string &queue);

	Spawned spawn(const std::string &queue, const std::string &task_name, const Json &params = Json::object(),
	              const SpawnOptions &options = {});
	// Transactional enqueue: the task exists only if the caller's transaction commits.
	static Spawned spawn(pqxx::transaction_base &tx, const std::string &queue, const std::string &task_name,
	                     const Json &params = Json::object(), const SpawnOptions &options = {});
	std::vector<Spawned> spawn_many(const std::string &queue, const std::string &task_name,
	                                const std::vector<Json> &params, const SpawnOptions &options = {});

	int emit_event(const std::string &queue, const std::string &event, const Json &payload = nullptr);
	int cancel(const std::string &task_id);
	void retry(const std::string &task_id);
	std::optional<TaskInfo> task(const std::string &task_id);
	// Deletes terminal tasks finished more than older_than ago; returns how many.
	long cleanup(const std::optional<std::string> &queue, std::chrono::seconds older_than);

	// Blocks until the task is terminal, woken by NOTIFY belay_finished (belay.watch), with
	// a slow poll as a safety net. Throws belay::Error on timeout.
	TaskInfo wait_for(const std::string &task_id, std::chrono::milliseconds timeout);

	pqxx::connection &connection();

private:
	struct State;
	std::unique_ptr<State> state_;
};

} // namespace belay
