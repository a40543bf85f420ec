// Materialized results for set-returning functions.
#include "belay/result_set.hpp"

#include <vector>

namespace belay {

ResultSet::ResultSet(FunctionCallInfo fcinfo) : info_(nullptr) {
	PgGuard([&] {
		InitMaterializedSRF(fcinfo, 0);
		info_ = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	});
}

void ResultSet::AddSpiRow(uint64 row) {
	PgGuard([&] {
		TupleDesc desc = info_->setDesc;
		if (SPI_tuptable == nullptr || row >= SPI_processed || SPI_tuptable->tupdesc->natts != desc->natts)
			elog(ERROR, "belay: result row does not match the function's result type");
		Datum *values = static_cast<Datum *>(palloc(sizeof(Datum) * desc->natts));
		bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * desc->natts));
		heap_deform_tuple(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, values, nulls);
		tuplestore_putvalues(info_->setResult, desc, values, nulls);
		pfree(values);
		pfree(nulls);
	});
}

void ResultSet::AddAllSpiRows(uint64 rows) {
	for (uint64 row = 0; row < rows; ++row)
		AddSpiRow(row);
}

void ResultSet::Add(Datum *values, bool *nulls) {
	PgGuard([&] { tuplestore_putvalues(info_->setResult, info_->setDesc, values, nulls); });
}

} // namespace belay
