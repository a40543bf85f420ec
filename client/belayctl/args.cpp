// Checking argument values before connecting: a bad value is a usage error (exit 2).
#include "cli.hpp"

#include <cctype>
#include <climits>

namespace belayctl {

Json ParseJsonArgument(const std::string &option, const std::string &text) {
	try {
		return Json::parse(text);
	} catch (const Json::parse_error &e) {
		std::string why = e.what();
		// "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse error"
		auto at = why.find("] ");
		if (at != std::string::npos)
			why = why.substr(at + 2);
		throw UsageError(option + " is not valid JSON: " + why);
	}
}

std::string CheckTaskId(const std::string &text) {
	std::string body = text;
	if (body.size() >= 2 && body.front() == '{' && body.back() == '}')
		body = body.substr(1, body.size() - 2);
	size_t digits = 0;
	bool good = !body.empty() && body.front() != '-' && body.back() != '-';
	for (size_t i = 0; good && i < body.size(); ++i) {
		char ch = body[i];
		if (std::isxdigit(static_cast<unsigned char>(ch)))
			++digits;
		else if (ch == '-')
			good = digits % 4 == 0 && body[i - 1] != '-'; // PostgreSQL: a hyphen after a group of four
		else
			good = false;
	}
	if (!good || digits != 32)
		throw UsageError("\"" + text + "\" is not a task id (a UUID such as 0190b6a2-7c1e-7d3a-9f00-1a2b3c4d5e6f)");
	return text;
}

namespace {

bool ParseLong(const std::string &text, long &out) {
	if (text.empty())
		return false;
	size_t i = 0;
	bool negative = false;
	if (text[0] == '-' || text[0] == '+') {
		negative = text[0] == '-';
		i = 1;
	}
	if (i == text.size())
		return false;
	long value = 0;
	for (; i < text.size(); ++i) {
		if (!std::isdigit(static_cast<unsigned char>(text[i])))
			return false;
		int digit = text[i] - '0';
		if (value > (LONG_MAX - digit) / 10)
			return false;
		value = value * 10 + digit;
	}
	out = negative ? -value : value;
	return true;
}

} // namespace

long ParseSeconds(const std::string &option, const std::string &text, long min) {
	std::string digits = text;
	long unit = 1;
	if (!digits.empty()) {
		switch (digits.back()) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: unit = 0; break;
		}
		if (unit != 0)
			digits.pop_back();
		else
			unit = 1;
	}
	constexpr long kMax = 100L * 366 * 86400; // a century is plenty
	long value = 0;
	if (!ParseLong(digits, value) || value > kMax / unit)
		throw UsageError(option + " takes a whole number of seconds (or with a unit: 90s, 15m, 12h, 7d), not \"" +
		                 text + "\"");
	value *= unit;
	if (value < min)
		throw UsageError(option + " must be at least " + std::to_string(min) + " second" + (min == 1 ? "" : "s") +
		                 ", not \"" + text + "\"");
	return value;
}

long ParseCount(const std::string &option, const std::string &text, long min, long max) {
	long value = 0;
	if (!ParseLong(text, value))
		throw UsageError(option + " takes a whole number, not \"" + text + "\"");
	if (value < min || value > max)
		throw UsageError(option + " must be between " + std::to_string(min) + " and " + std::to_string(max) + ", not " +
		                 text);
	return value;
}

const std::vector<std::string> &PublicStates() {
	static const std::vector<std::string> states = {"pending",   "running", "sleeping", "waiting",
	                                                "completed", "failed",  "cancelled"};
	return states;
}

std::string CheckState(const std::string &text) {
	for (const std::string &state : PublicStates())
		if (text == state)
			return text;
	std::string list;
	for (const std::string &state : PublicStates())
		list += (list.empty() ? "" : ", ") + state;
	throw UsageError("unknown state \"" + text + "\"; the states are " + list);
}

std::optional<belay::SpawnOptions> ExactSpawnOptions(const Json &options) {
	if (!options.is_object())
		return std::nullopt;
	belay::SpawnOptions out;
	try {
		for (const auto &[key, value] : options.items()) {
			if (key == "max_attempts" && value.is_number_integer()) {
				out.max_attempts = value.get<int>();
			} else if (key == "priority" && value.is_number_integer()) {
				out.priority = value.get<int>();
			} else if (key == "delay_seconds" && value.is_number()) {
				out.delay_seconds = value.get<double>();
			} else if (key == "idempotency_key" && value.is_string()) {
				out.idempotency_key = value.get<std::string>();
			} else if (key == "headers" && value.is_object()) {
				out.headers = value;
			} else if (key == "cancellation" && value.is_object()) {
				for (const auto &[name, seconds] : value.items()) {
					if (!seconds.is_number())
						return std::nullopt;
					if (name == "max_delay_seconds")
						out.max_delay_seconds = seconds.get<double>();
					else if (name == "max_duration_seconds")
						out.max_duration_seconds = seconds.get<double>();
					else
						return std::nullopt;
				}
			} else if (key == "retry" && value.is_object()) {
				belay::RetryOptions retry;
				if (value.size() != 5 || !value.value("kind", Json()).is_string() ||
				    !value.value("jitter", Json()).is_boolean())
					return std::nullopt; // a partial retry object: let belay fill it from the queue's policy
				retry.kind = value.at("kind").get<std::string>();
				retry.base_seconds = value.at("base_seconds").get<double>();
				retry.factor = value.at("factor").get<double>();
				retry.max_seconds = value.at("max_seconds").get<double>();
				retry.jitter = value.at("jitter").get<bool>();
				out.retry = retry;
			} else {
				return std::nullopt; // run_at, an unknown key, a value of the wrong type: belay judges it
			}
		}
	} catch (const Json::exception &) {
		return std::nullopt;
	}
	// The round trip must give back the same object, or belay would be asked something else.
	if (out.ToJson() != options)
		return std::nullopt;
	return out;
}

} // namespace belayctl
