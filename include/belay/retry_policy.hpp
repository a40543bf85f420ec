// Retry policy: how long to wait before the next attempt. Pure C++.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace belay {

struct RetryPolicy {
	enum class Kind { Fixed, Exponential };
	Kind kind = Kind::Exponential;
	double base_seconds = 1;
	double factor = 2;
	double max_seconds = 300;
	bool jitter = false;

	// Reads and checks a policy object; `where` names it in errors (e.g. "options.retry").
	// Keys that are absent keep the defaults above.
	static RetryPolicy FromJson(const nlohmann::json &object, const std::string &where);
	nlohmann::json ToJson() const;

	// Delay after failed attempt `attempt` (1-based): fixed waits base_seconds every time;
	// exponential waits base_seconds * factor^(attempt-1), capped at max_seconds. `random01` in [0, 1) drives jitter,
	// which picks uniformly from [delay / 2, delay] so a retry is never immediate.
	double DelaySeconds(int attempt, double random01) const;
};

} // namespace belay
