// The rows a set-returning SQL function returns, materialized into its tuplestore.
#pragma once

#include "belay/guard.hpp"

namespace belay {

class ResultSet {
public:
	// Call first, before SPI is connected: sets up the function's tuplestore.
	explicit ResultSet(FunctionCallInfo fcinfo);
	// Appends row `row` of the last SPI result; its columns must match the function's
	// declared result columns in order and type.
	void AddSpiRow(uint64 row);
	void AddAllSpiRows(uint64 rows);
	void Add(Datum *values, bool *nulls);

private:
	ReturnSetInfo *info_;
};

} // namespace belay
