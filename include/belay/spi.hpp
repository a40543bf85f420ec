// SPI with statements prepared once per backend, and the datum conversions the SQL
// functions need. Every PostgreSQL call in here runs under PgGuard, so callers may hold
// C++ objects across them.
#pragma once

#include "belay/guard.hpp"

#include <initializer_list>
#include <optional>
#include <string>

namespace belay::spi {

// SPI_connect for the scope. On normal exit SPI_finish; while an exception unwinds,
// nothing: the aborting transaction cleans SPI up.
class Connection {
public:
	Connection();
	~Connection();
	Connection(const Connection &) = delete;
	Connection &operator=(const Connection &) = delete;
};

// Positional parameters for a Statement ($1, $2, ...).
class Params {
public:
	Params &Add(Datum value);
	Params &Null();
	Params &Text(const std::string &value);
	Params &Text(const std::optional<std::string> &value);
	Params &Int4(int32 value);
	Params &Int4(const std::optional<int32> &value);
	Params &Float8(double value);
	Params &Float8(const std::optional<double> &value);
	Params &Bool(bool value);
	Params &Timestamptz(TimestampTz value);

	Datum *values() { return values_; }
	const char *nulls() const { return nulls_; }
	int size() const { return count_; }

private:
	static constexpr int kMax = 24;
	Datum values_[kMax];
	char nulls_[kMax];
	int count_ = 0;
};

// A statement prepared on first use and kept for the life of the backend
// (SPI_prepare + SPI_keepplan). Define them as function-local statics.
class Statement {
public:
	// custom_plans: plan each execution for its parameters and the tables' current size
	// (for statements over batches, whose best plan changes with the data).
	Statement(const char *sql, std::initializer_list<Oid> argument_types, bool custom_plans = false);
	// Runs the statement; returns the number of rows processed or returned.
	uint64 Run(Params &params);
	// Run, but under REPEATABLE READ and SERIALIZABLE it acts on rows committed after the
	// transaction's snapshot too, and raises a serialization failure (40001) on a row that
	// snapshot cannot see (as foreign-key actions do). At READ COMMITTED it is Run.
	uint64 RunSeeingLatest(Params &params);

private:
	uint64 Execute(Params &params, bool seeing_latest);

	const char *sql_;
	Oid types_[24];
	int argument_count_;
	bool custom_plans_;
	SPIPlanPtr plan_ = nullptr;
};

// Access to the rows of the last Run (SPI_tuptable); columns count from 0.
bool IsNull(uint64 row, int column);
Datum Value(uint64 row, int column, bool *is_null = nullptr);
std::string TextValue(uint64 row, int column);
std::optional<std::string> OptTextValue(uint64 row, int column);
int32 Int4Value(uint64 row, int column);
bool BoolValue(uint64 row, int column);

} // namespace belay::spi
