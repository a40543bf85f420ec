// belay's error type: a C++ exception that carries a SQLSTATE, so that the guard at the
// PostgreSQL boundary can re-raise it with the right code. Pure C++: no postgres.h.
#pragma once

#include <stdexcept>
#include <string>

namespace belay {

// Same packing as PostgreSQL's MAKE_SQLSTATE, usable without postgres.h.
constexpr int SixBit(char ch) { return (ch - '0') & 0x3F; }
constexpr int MakeSqlstate(const char (&s)[6]) {
	return SixBit(s[0]) + (SixBit(s[1]) << 6) + (SixBit(s[2]) << 12) + (SixBit(s[3]) << 18) +
	       (SixBit(s[4]) << 24);
}

namespace sqlstate {
// belay's own class BL.
constexpr int kLeaseLost = MakeSqlstate("BL001");    // the run is no longer the task's live run
constexpr int kCancelled = MakeSqlstate("BL002");    // the task was cancelled
constexpr int kUnknownQueue = MakeSqlstate("BL003"); // no such queue
// PostgreSQL's codes for bad arguments.
constexpr int kInvalidParameter = MakeSqlstate("22023"); // invalid_parameter_value
constexpr int kNullValue = MakeSqlstate("22004");        // null_value_not_allowed
constexpr int kMalformed = MakeSqlstate("22P02");        // invalid_text_representation
constexpr int kObjectState = MakeSqlstate("55000");      // object_not_in_prerequisite_state
constexpr int kInternal = MakeSqlstate("XX000");         // internal_error
constexpr int kOutOfMemory = MakeSqlstate("53200");      // out_of_memory
} // namespace sqlstate

class Error : public std::runtime_error {
public:
	Error(int code, std::string message, std::string detail = {}, std::string hint = {})
	    : std::runtime_error(std::move(message)), code_(code), detail_(std::move(detail)),
	      hint_(std::move(hint)) {}

	int code() const { return code_; }
	const std::string &detail() const { return detail_; }
	const std::string &hint() const { return hint_; }

private:
	int code_;
	std::string detail_;
	std::string hint_;
};

// Shorthands for the argument errors every function raises.
[[noreturn]] inline void ThrowInvalid(std::string message, std::string hint = {}) {
	throw Error(sqlstate::kInvalidParameter, std::move(message), {}, std::move(hint));
}
[[noreturn]] inline void ThrowNull(const std::string &argument) {
	throw Error(sqlstate::kNullValue, argument + " must not be null");
}

} // namespace belay
