// libpqxx exceptions to belay::Error, by SQLSTATE.
#include "belay/client/errors.hpp"

#include <pqxx/pqxx>

namespace belay {

void RethrowAsBelayError() {
	try {
		throw;
	} catch (const pqxx::sql_error &e) {
		const std::string state = e.sqlstate();
		if (state == "BL001")
			throw LeaseLost(e.what(), state);
		if (state == "BL002")
			throw Cancelled(e.what(), state);
		if (state == "BL003")
			throw UnknownQueue(e.what(), state);
		if (state.rfind("22", 0) == 0 || state == "55000")
			throw InvalidArgument(e.what(), state);
		if (state.rfind("08", 0) == 0 || state == "57P01")
			throw ConnectionError(e.what(), state);
		throw Error(e.what(), state);
	} catch (const pqxx::in_doubt_error &e) {
		throw OutcomeUnknown(e.what());
	} catch (const pqxx::statement_completion_unknown &e) {
		throw OutcomeUnknown(e.what());
	} catch (const pqxx::broken_connection &e) {
		throw ConnectionError(e.what());
	} catch (const pqxx::transaction_rollback &e) {
		throw Error(e.what(), "40000");
	} catch (const std::exception &e) {
		throw Error(e.what());
	}
}

} // namespace belay
