// The option objects of spawn, spawn_many, spawn_child and create_queue, parsed and
// checked in full before anything is written. Pure C++.
#pragma once

#include "belay/retry_policy.hpp"

#include <optional>
#include <string>

namespace belay {

enum class SpawnKind { Single, Many, Child };

struct Cancellation {
	std::optional<double> max_delay_seconds;    // cancel if not started this long after spawn
	std::optional<double> max_duration_seconds; // cancel if not finished this long after first start

	static Cancellation FromJson(const nlohmann::json &object, const std::string &where);
	nlohmann::json ToJson() const;
};

struct SpawnOptions {
	std::optional<int> max_attempts;
	std::optional<RetryPolicy> retry;
	int priority = 0;
	std::optional<std::string> run_at; // timestamp text, parsed by PostgreSQL
	std::optional<double> delay_seconds;
	std::optional<std::string> idempotency_key;
	std::optional<std::string> headers; // JSON text of an object
	Cancellation cancellation;
	std::optional<std::string> queue; // spawn_child only: the child's queue
};

// `json` is the text of the options object; `argument` names it in errors.
SpawnOptions ParseSpawnOptions(const std::string &json, SpawnKind kind, const std::string &argument = "options");

// A queue's policy: defaults for the tasks spawned into it.
struct QueuePolicy {
	std::optional<int> max_attempts;
	std::optional<RetryPolicy> retry;
	Cancellation cancellation;

	std::string ToJson() const;
};

QueuePolicy ParseQueuePolicy(const std::string &json);

} // namespace belay
