// Reading a SQL function's arguments with the checks every belay function makes first:
// NULLs are refused with 22004 naming the argument, unless the argument is optional.
#pragma once

#include "belay/guard.hpp"

#include <optional>
#include <string>
#include <vector>

namespace belay {

enum class JsonShape { Any, Object, Array };

class Arguments {
public:
	explicit Arguments(FunctionCallInfo fcinfo) : fcinfo_(fcinfo) {}

	bool IsNull(int index) const { return fcinfo_->args[index].isnull; }
	Datum Raw(int index) const { return fcinfo_->args[index].value; }

	std::string Text(int index, const char *name) const;
	std::optional<std::string> OptText(int index) const;
	// A uuid argument, returned as its datum (valid for the whole call).
	Datum Uuid(int index, const char *name) const;
	int32 Int4(int index, const char *name) const;
	bool Bool(int index, const char *name) const;
	TimestampTz Timestamptz(int index, const char *name) const;
	std::optional<TimestampTz> OptTimestamptz(int index, const char *name) const;
	// A numeric argument as a double; refuses NaN and infinities.
	double Number(int index, const char *name) const;
	std::optional<double> OptNumber(int index, const char *name) const;
	// A jsonb argument checked for its top-level shape; returns the datum.
	Datum Json(int index, const char *name, JsonShape shape) const;
	std::optional<Datum> OptJson(int index) const;
	// The jsonb argument as JSON text (for parsing options in C++).
	std::string JsonText(int index, const char *name, JsonShape shape) const;

private:
	void RequireNotNull(int index, const char *name) const;
	FunctionCallInfo fcinfo_;
};

// Conversions for results.
Datum TextDatum(const std::string &value);
// A new UUIDv7 as a uuid datum.
Datum NewUuidDatum();
std::string UuidToString(Datum uuid);
// A uuid's 16 bytes, as a key for C++ containers.
std::string UuidBytesOf(Datum uuid);
// The elements of a uuid[] without nulls (checked by the caller), as datums that point
// into the array.
std::vector<Datum> UuidArrayElements(Datum array);
// Parses text as a timestamptz with PostgreSQL's input function; 22P02 names `what`.
TimestampTz ParseTimestamptz(const std::string &text, const std::string &what);
TimestampTz Now();

} // namespace belay
