// Input checks shared by the SQL functions.
#include "belay/validation.hpp"

#include "belay/errors.hpp"

#include <cmath>
#include <cstdio>

namespace belay {

void CheckQueueName(const std::string &queue, const std::string &argument) {
	if (queue.empty() || queue.size() > kMaxQueueName)
		ThrowInvalid(argument + " must be 1 to 100 characters long",
		             "Queue names use the characters A-Z, a-z, 0-9, _ . : and -.");
	for (unsigned char c : queue) {
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		          c == '.' || c == ':' || c == '-';
		if (!ok)
			ThrowInvalid(argument + " \"" + queue + "\" is not a valid queue name",
			             "Queue names use the characters A-Z, a-z, 0-9, _ . : and -.");
	}
}

void CheckName(const std::string &value, const std::string &argument) {
	if (value.empty())
		ThrowInvalid(argument + " must not be empty");
	if (value.size() > kMaxName)
		ThrowInvalid(argument + " must be at most 255 bytes long");
}

void CheckQty(int qty) {
	if (qty < 1 || qty > kMaxClaim)
		ThrowInvalid("qty must be between 1 and 1000, not " + std::to_string(qty));
}

void CheckLeaseSeconds(double seconds, const std::string &argument) {
	if (!(seconds > 0) || seconds > kMaxSeconds)
		ThrowInvalid(argument + " must be greater than 0 and at most 315360000 (ten years)");
}

void CheckTimeoutSeconds(double seconds, const std::string &argument) {
	if (seconds < 0 || seconds > kMaxSeconds)
		ThrowInvalid(argument + " must be between 0 and 315360000 (ten years)");
}

namespace {
// 300 rather than 300.0 in messages.
std::string FormatNumber(double value) {
	char text[32];
	snprintf(text, sizeof text, "%.15g", value);
	return text;
}
} // namespace

double JsonNumber(const nlohmann::json &value, const std::string &name, double min, double max) {
	if (!value.is_number())
		ThrowInvalid(name + " must be a number");
	double number = value.get<double>();
	if (!std::isfinite(number) || number < min || number > max)
		ThrowInvalid(name + " must be between " + FormatNumber(min) + " and " + FormatNumber(max));
	return number;
}

int JsonInteger(const nlohmann::json &value, const std::string &name, long long min, long long max) {
	if (!value.is_number())
		ThrowInvalid(name + " must be an integer");
	double number = value.get<double>();
	if (!std::isfinite(number) || std::floor(number) != number)
		ThrowInvalid(name + " must be an integer");
	if (number < static_cast<double>(min) || number > static_cast<double>(max))
		ThrowInvalid(name + " must be between " + std::to_string(min) + " and " + std::to_string(max));
	return static_cast<int>(number);
}

std::string JsonString(const nlohmann::json &value, const std::string &name) {
	if (!value.is_string())
		ThrowInvalid(name + " must be a string");
	return value.get<std::string>();
}

} // namespace belay
