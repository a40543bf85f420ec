// belay client errors, mapped from the SQLSTATEs of belay's SQL functions.
#pragma once

#include <stdexcept>
#include <string>

namespace belay {

class Error : public std::runtime_error {
public:
	Error(const std::string &message, std::string sqlstate = {})
	    : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
	const std::string &sqlstate() const { return sqlstate_; }

private:
	std::string sqlstate_;
};

// BL001: the run is no longer the task's live run (lease expired, run ended, re-claimed).
class LeaseLost : public Error {
	using Error::Error;
};
// BL002: the task was cancelled.
class Cancelled : public Error {
	using Error::Error;
};
// BL003: no such queue.
class UnknownQueue : public Error {
	using Error::Error;
};
// 22xxx and 55000: a bad argument or a call the task's state does not allow.
class InvalidArgument : public Error {
	using Error::Error;
};
// The connection broke, or the server could not be reached. Retryable.
class ConnectionError : public Error {
	using Error::Error;
};
// The connection broke while a commit was in flight: it may or may not have happened.
class OutcomeUnknown : public ConnectionError {
	using ConnectionError::ConnectionError;
};

// Runs fn and turns libpqxx exceptions into the belay::Error hierarchy.
template <typename F>
auto Translate(F &&fn) -> decltype(fn());
[[noreturn]] void RethrowAsBelayError();

template <typename F>
auto Translate(F &&fn) -> decltype(fn()) {
	try {
		return fn();
	} catch (const Error &) {
		throw;
	} catch (...) {
		RethrowAsBelayError();
	}
}

} // namespace belay
