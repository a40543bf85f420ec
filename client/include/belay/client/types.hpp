// Values the client passes to and gets from belay.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace belay {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;

// The options of spawn (DESIGN.md): unset fields take the queue's policy or belay's default.
struct RetryOptions {
	std::string kind = "exponential"; // or "fixed"
	double base_seconds = 1;
	double factor = 2;
	double max_seconds = 300;
	bool jitter = false;
};

struct SpawnOptions {
	std::optional<int> max_attempts;
	std::optional<RetryOptions> retry;
	std::optional<int> priority;
	std::optional<Clock::time_point> run_at;
	std::optional<double> delay_seconds;
	std::optional<std::string> idempotency_key;
	Json headers = Json::object();
	std::optional<double> max_delay_seconds;    // cancellation policy
	std::optional<double> max_duration_seconds;
	std::optional<std::string> queue;           // spawn_child only: the child's queue

	Json ToJson() const;
};

struct Spawned {
	std::string task_id;
	bool created = false;
};

struct TaskInfo {
	std::string task_id;
	std::string queue;
	std::string task_name;
	std::string state; // pending, running, sleeping, waiting, completed, failed, cancelled
	int attempt = 0;
	int max_attempts = 0;
	Json params;
	Json result; // null unless completed with a result
	Json error;  // null unless failed or cancelled with a reason
	std::optional<std::string> parent_task_id;
	std::string created_at;
	std::string available_at;
	std::optional<std::string> finished_at;

	bool terminal() const { return state == "completed" || state == "failed" || state == "cancelled"; }
};

// ISO 8601 in UTC with microseconds, as PostgreSQL reads it.
std::string FormatTimestamp(Clock::time_point at);
// A number as PostgreSQL reads it, whatever the program's locale.
std::string FormatNumber(double value);

} // namespace belay
