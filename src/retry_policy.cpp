// Retry policy parsing and backoff arithmetic.
#include "belay/retry_policy.hpp"

#include "belay/errors.hpp"
#include "belay/validation.hpp"

#include <algorithm>
#include <cmath>

namespace belay {

RetryPolicy RetryPolicy::FromJson(const nlohmann::json &object, const std::string &where) {
	if (!object.is_object())
		ThrowInvalid(where + " must be a JSON object");
	RetryPolicy policy;
	for (const auto &[key, value] : object.items()) {
		std::string name = where + "." + key;
		if (key == "kind") {
			if (!value.is_string() || (value != "fixed" && value != "exponential"))
				ThrowInvalid(name + " must be \"fixed\" or \"exponential\"");
			policy.kind = value == "fixed" ? Kind::Fixed : Kind::Exponential;
		} else if (key == "base_seconds") {
			policy.base_seconds = JsonNumber(value, name, 0, kMaxSeconds);
		} else if (key == "factor") {
			policy.factor = JsonNumber(value, name, 1, 100);
		} else if (key == "max_seconds") {
			policy.max_seconds = JsonNumber(value, name, 0, kMaxSeconds);
		} else if (key == "jitter") {
			if (!value.is_boolean())
				ThrowInvalid(name + " must be a boolean");
			policy.jitter = value.get<bool>();
		} else {
			ThrowInvalid("unknown key \"" + key + "\" in " + where,
			             "Valid keys are kind, base_seconds, factor, max_seconds and jitter.");
		}
	}
	return policy;
}

nlohmann::json RetryPolicy::ToJson() const {
	return {{"kind", kind == Kind::Fixed ? "fixed" : "exponential"},
	        {"base_seconds", base_seconds},
	        {"factor", factor},
	        {"max_seconds", max_seconds},
	        {"jitter", jitter}};
}

double RetryPolicy::DelaySeconds(int attempt, double random01) const {
	double delay = base_seconds;
	if (kind == Kind::Exponential) {
		// factor^(attempt-1) overflows to inf for large attempts; the cap handles it.
		delay = std::min(base_seconds * std::pow(factor, std::max(0, attempt - 1)), max_seconds);
		if (!std::isfinite(delay))
			delay = max_seconds;
	}
	if (jitter)
		delay = delay / 2 + (delay / 2) * random01;
	return delay;
}

} // namespace belay
