// Spawn options as the JSON object belay's SQL functions take.
#include "belay/client/types.hpp"

#include <charconv>
#include <cstdlib>
#include <ctime>

namespace belay {

std::string FormatTimestamp(Clock::time_point at) {
	auto micros = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
	std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
	long fraction = static_cast<long>(micros % 1000000);
	if (fraction < 0) {
		fraction += 1000000;
		seconds -= 1;
	}
	std::tm utc{};
	gmtime_r(&seconds, &utc);
	char text[64];
	std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
	char out[80];
	std::snprintf(out, sizeof out, "%s.%06ldZ", text, fraction);
	return out;
}

Json SpawnOptions::ToJson() const {
	Json out = Json::object();
	if (max_attempts)
		out["max_attempts"] = *max_attempts;
	if (retry)
		out["retry"] = {{"kind", retry->kind},
		                {"base_seconds", retry->base_seconds},
		                {"factor", retry->factor},
		                {"max_seconds", retry->max_seconds},
		                {"jitter", retry->jitter}};
	if (priority)
		out["priority"] = *priority;
	if (run_at)
		out["run_at"] = FormatTimestamp(*run_at);
	if (delay_seconds)
		out["delay_seconds"] = *delay_seconds;
	if (idempotency_key)
		out["idempotency_key"] = *idempotency_key;
	if (!headers.empty())
		out["headers"] = headers;
	Json cancellation = Json::object();
	if (max_delay_seconds)
		cancellation["max_delay_seconds"] = *max_delay_seconds;
	if (max_duration_seconds)
		cancellation["max_duration_seconds"] = *max_duration_seconds;
	if (!cancellation.empty())
		out["cancellation"] = cancellation;
	if (queue)
		out["queue"] = *queue;
	return out;
}

std::string FormatNumber(double value) {
	char text[64];
	auto result = std::to_chars(text, text + sizeof text, value);
	return std::string(text, result.ptr);
}

std::string DefaultConnectionString() {
	const char *url = std::getenv("BELAY_DATABASE_URL");
	return url ? url : "";
}

} // namespace belay
