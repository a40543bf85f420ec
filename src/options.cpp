// Parsing and checking option objects.
#include "belay/options.hpp"

#include "belay/errors.hpp"
#include "belay/validation.hpp"

#include <limits>

namespace belay {
namespace {

nlohmann::json ParseObject(const std::string &json, const std::string &argument) {
	nlohmann::json object;
	try {
		object = nlohmann::json::parse(json);
	} catch (const nlohmann::json::out_of_range &) {
		ThrowInvalid(argument + " holds a number out of range");
	} catch (const nlohmann::json::exception &) {
		throw Error(sqlstate::kMalformed, argument + " is not valid JSON");
	}
	if (!object.is_object())
		ThrowInvalid(argument + " must be a JSON object");
	return object;
}

} // namespace

Cancellation Cancellation::FromJson(const nlohmann::json &object, const std::string &where) {
	if (!object.is_object())
		ThrowInvalid(where + " must be a JSON object");
	Cancellation out;
	for (const auto &[key, value] : object.items()) {
		std::string name = where + "." + key;
		if (key != "max_delay_seconds" && key != "max_duration_seconds")
			ThrowInvalid("unknown key \"" + key + "\" in " + where,
			             "Valid keys are max_delay_seconds and max_duration_seconds.");
		if (value.is_number() && value.get<double>() <= 0)
			ThrowInvalid(name + " must be greater than 0");
		double seconds = JsonNumber(value, name, 0, kMaxSeconds);
		(key == "max_delay_seconds" ? out.max_delay_seconds : out.max_duration_seconds) = seconds;
	}
	return out;
}

nlohmann::json Cancellation::ToJson() const {
	nlohmann::json out = nlohmann::json::object();
	if (max_delay_seconds)
		out["max_delay_seconds"] = *max_delay_seconds;
	if (max_duration_seconds)
		out["max_duration_seconds"] = *max_duration_seconds;
	return out;
}

SpawnOptions ParseSpawnOptions(const std::string &json, SpawnKind kind, const std::string &argument) {
	nlohmann::json object = ParseObject(json, argument);
	SpawnOptions options;
	for (const auto &[key, value] : object.items()) {
		std::string name = argument + "." + key;
		if (key == "max_attempts") {
			options.max_attempts = JsonInteger(value, name, 1, std::numeric_limits<int32_t>::max());
		} else if (key == "retry") {
			options.retry = RetryPolicy::FromJson(value, name);
		} else if (key == "priority") {
			options.priority = JsonInteger(value, name, -32768, 32767);
		} else if (key == "run_at") {
			options.run_at = JsonString(value, name);
		} else if (key == "delay_seconds") {
			options.delay_seconds = JsonNumber(value, name, 0, kMaxSeconds);
		} else if (key == "idempotency_key" && kind == SpawnKind::Single) {
			options.idempotency_key = JsonString(value, name);
			CheckName(*options.idempotency_key, name);
		} else if (key == "headers") {
			if (!value.is_object())
				ThrowInvalid(name + " must be a JSON object");
			options.headers = value.dump();
		} else if (key == "cancellation") {
			options.cancellation = Cancellation::FromJson(value, name);
		} else if (key == "queue" && kind == SpawnKind::Child) {
			options.queue = JsonString(value, name);
			CheckQueueName(*options.queue, name);
		} else if (key == "idempotency_key" && kind == SpawnKind::Many) {
			ThrowInvalid(name + " is not allowed in spawn_many",
			             "An idempotency key names one task; spawn such tasks one by one with spawn.");
		} else if (key == "idempotency_key") {
			ThrowInvalid(name + " is not allowed in spawn_child",
			             "spawn_child is already idempotent per (task, step).");
		} else {
			std::string valid = "max_attempts, retry, priority, run_at, delay_seconds, ";
			valid += kind == SpawnKind::Single ? "idempotency_key, " : "";
			valid += "headers, cancellation";
			valid += kind == SpawnKind::Child ? ", queue" : "";
			ThrowInvalid("unknown key \"" + key + "\" in " + argument, "Valid keys are " + valid + ".");
		}
	}
	if (options.run_at && options.delay_seconds)
		ThrowInvalid(argument + " must not set both run_at and delay_seconds");
	return options;
}

std::string QueuePolicy::ToJson() const {
	nlohmann::json out = nlohmann::json::object();
	if (max_attempts)
		out["max_attempts"] = *max_attempts;
	if (retry)
		out["retry"] = retry->ToJson();
	nlohmann::json cancel = cancellation.ToJson();
	if (!cancel.empty())
		out["cancellation"] = cancel;
	return out.dump();
}

QueuePolicy ParseQueuePolicy(const std::string &json) {
	nlohmann::json object = ParseObject(json, "policy");
	QueuePolicy policy;
	for (const auto &[key, value] : object.items()) {
		std::string name = "policy." + key;
		if (key == "max_attempts") {
			policy.max_attempts = JsonInteger(value, name, 1, std::numeric_limits<int32_t>::max());
		} else if (key == "retry") {
			policy.retry = RetryPolicy::FromJson(value, name);
		} else if (key == "cancellation") {
			policy.cancellation = Cancellation::FromJson(value, name);
		} else {
			ThrowInvalid("unknown key \"" + key + "\" in policy",
			             "Valid keys are max_attempts, retry and cancellation.");
		}
	}
	return policy;
}

} // namespace belay
