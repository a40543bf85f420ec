// Input checks shared by the SQL functions. Pure C++: each throws belay::Error with the
// SQLSTATE and a message that names the argument.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace belay {

constexpr double kMaxSeconds = 10.0 * 365 * 24 * 3600; // ten years: any longer is a mistake
constexpr int kMaxClaim = 1000;
constexpr size_t kMaxQueueName = 100;
constexpr size_t kMaxName = 255;

// Queue names: 1 to 100 characters of [A-Za-z0-9_.:-].
void CheckQueueName(const std::string &queue, const std::string &argument = "queue");
// Task, step, event and worker names: 1 to 255 characters, no NUL.
void CheckName(const std::string &value, const std::string &argument);
void CheckQty(int qty);
void CheckLeaseSeconds(double seconds, const std::string &argument = "lease_seconds");
void CheckTimeoutSeconds(double seconds, const std::string &argument = "timeout_seconds");

// JSON value checks for option objects; `name` is the dotted path in messages.
double JsonNumber(const nlohmann::json &value, const std::string &name, double min, double max);
int JsonInteger(const nlohmann::json &value, const std::string &name, long long min, long long max);
std::string JsonString(const nlohmann::json &value, const std::string &name);

} // namespace belay
