// SPI wrappers: prepared-once statements, parameters, and result access under PgGuard.
#include "belay/spi.hpp"

#include <exception>

namespace belay::spi {

Connection::Connection() {
	PgGuard([] {
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "belay: SPI_connect failed");
	});
}

Connection::~Connection() {
	if (std::uncaught_exceptions() > 0)
		return;
	try {
		PgGuard([] { SPI_finish(); });
	} catch (...) {
		// A destructor must not throw; SPI_finish only fails when the stack is already
		// broken, and the transaction's abort will report and clean that up.
	}
}

Params &Params::Add(Datum value) {
	if (count_ >= kMax)
		throw Error(sqlstate::kInternal, "belay: too many statement parameters");
	values_[count_] = value;
	nulls_[count_] = ' ';
	++count_;
	return *this;
}

Params &Params::Null() {
	Add(0);
	nulls_[count_ - 1] = 'n';
	return *this;
}

Params &Params::Text(const std::string &value) {
	Datum datum = 0;
	PgGuard([&] { datum = PointerGetDatum(cstring_to_text_with_len(value.data(), value.size())); });
	return Add(datum);
}

Params &Params::Text(const std::optional<std::string> &value) { return value ? Text(*value) : Null(); }
Params &Params::Int4(int32 value) { return Add(Int32GetDatum(value)); }
Params &Params::Int4(const std::optional<int32> &value) { return value ? Int4(*value) : Null(); }
Params &Params::Float8(double value) { return Add(Float8GetDatum(value)); }
Params &Params::Float8(const std::optional<double> &value) { return value ? Float8(*value) : Null(); }
Params &Params::Bool(bool value) { return Add(BoolGetDatum(value)); }
Params &Params::Timestamptz(TimestampTz value) { return Add(TimestampTzGetDatum(value)); }

Statement::Statement(const char *sql, std::initializer_list<Oid> argument_types, bool custom_plans)
    : sql_(sql), argument_count_(0), custom_plans_(custom_plans) {
	for (Oid type : argument_types)
		types_[argument_count_++] = type;
}

uint64 Statement::Run(Params &params) { return Execute(params, false); }

uint64 Statement::RunSeeingLatest(Params &params) { return Execute(params, true); }

uint64 Statement::Execute(Params &params, bool seeing_latest) {
	if (params.size() != argument_count_)
		throw Error(sqlstate::kInternal, "belay: statement parameter count mismatch");
	uint64 processed = 0;
	PgGuard([&] {
		if (plan_ == nullptr) {
			SPIPlanPtr plan = SPI_prepare_cursor(sql_, argument_count_, types_,
			                                     custom_plans_ ? CURSOR_OPT_CUSTOM_PLAN : 0);
			if (plan == nullptr)
				elog(ERROR, "belay: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "belay: SPI_keepplan failed");
			plan_ = plan;
		}
		// As PostgreSQL's foreign-key checks do: rows committed after the transaction's
		// snapshot are seen, and acting on one it cannot see is a serialization failure.
		Snapshot latest = InvalidSnapshot;
		Snapshot crosscheck = InvalidSnapshot;
		if (seeing_latest && IsolationUsesXactSnapshot()) {
			CommandCounterIncrement();
			latest = GetLatestSnapshot();
			crosscheck = GetTransactionSnapshot();
		}
		int rc = SPI_execute_snapshot(plan_, params.values(), params.nulls(), latest, crosscheck, false, true, 0);
		if (rc < 0)
			elog(ERROR, "belay: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		processed = SPI_processed;
	});
	return processed;
}

Datum Value(uint64 row, int column, bool *is_null) {
	bool null = true;
	Datum value = 0;
	if (SPI_tuptable == nullptr || row >= SPI_processed)
		throw Error(sqlstate::kInternal, "belay: no such result row");
	PgGuard([&] { value = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column + 1, &null); });
	if (is_null)
		*is_null = null;
	else if (null)
		throw Error(sqlstate::kInternal, "belay: unexpected null in result");
	return value;
}

bool IsNull(uint64 row, int column) {
	bool null = true;
	Value(row, column, &null);
	return null;
}

std::string TextValue(uint64 row, int column) {
	Datum value = Value(row, column);
	std::string out;
	PgGuard([&] {
		text *t = DatumGetTextPP(value);
		out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	});
	return out;
}

std::optional<std::string> OptTextValue(uint64 row, int column) {
	if (IsNull(row, column))
		return std::nullopt;
	return TextValue(row, column);
}

int32 Int4Value(uint64 row, int column) { return DatumGetInt32(Value(row, column)); }
bool BoolValue(uint64 row, int column) { return DatumGetBool(Value(row, column)); }


} // namespace belay::spi
