// The C++ <-> PostgreSQL boundary (STYLE.md section 2).
//
// CppGuard: every SQL-callable entry point runs its body inside it. No C++ exception
// crosses into PostgreSQL: a belay::Error is re-raised with its SQLSTATE, a caught
// PostgreSQL error is re-thrown whole (code, detail, hint), anything else is XX000.
//
// PgGuard: every PostgreSQL call that may ereport runs inside it while C++ objects with
// destructors are alive. A PostgreSQL error becomes a PgError exception, so it unwinds
// the C++ frames instead of longjmp'ing over them; CppGuard then re-raises it.
#pragma once

#include "belay/errors.hpp"
#include "belay/pg.hpp"

#include <cstring>
#include <utility>

namespace belay {

// A PostgreSQL error caught by PgGuard, kept whole until CppGuard re-raises it.
class PgError : public std::exception {
public:
	explicit PgError(ErrorData *data) : data_(data) {}
	ErrorData *data() const { return data_; }
	int code() const { return data_->sqlerrcode; }
	const char *what() const noexcept override { return data_->message ? data_->message : "postgres error"; }

private:
	ErrorData *data_;
};

template <typename F>
void PgGuard(F &&pg_call) {
	MemoryContext context = CurrentMemoryContext;
	sigjmp_buf *saved_stack = PG_exception_stack;
	ErrorContextCallback *saved_context = error_context_stack;
	ErrorData *volatile caught = nullptr;
	volatile bool copy_failed = false;
	try {
		PG_TRY();
		{
			pg_call();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(context);
			// Copying the error allocates, and may fail (out of memory): that error must
			// not longjmp over the C++ frames either.
			PG_TRY();
			{
				caught = CopyErrorData();
			}
			PG_CATCH();
			{
				copy_failed = true;
			}
			PG_END_TRY();
			FlushErrorState();
			MemoryContextSwitchTo(context);
		}
		PG_END_TRY();
	} catch (...) {
		// A C++ exception from pg_call left PG_TRY without PG_END_TRY: put back the error
		// handler it had replaced, or a later ereport would jump into a dead frame.
		PG_exception_stack = saved_stack;
		error_context_stack = saved_context;
		throw;
	}
	if (copy_failed)
		throw Error(sqlstate::kOutOfMemory, "out of memory");
	if (caught)
		throw PgError(caught);
}

namespace detail {
// Raises the error described by the fields; never returns. Kept out of line so that the
// guard's catch blocks have ended (and their objects are destroyed) before it runs.
[[noreturn]] void RaiseCaught(int code, const char *message, const char *detail, const char *hint);
[[noreturn]] void RaiseCaughtPg(ErrorData *data);
} // namespace detail

template <typename F>
auto CppGuard(F &&body) -> decltype(body()) {
	sigjmp_buf *saved_stack = PG_exception_stack;
	ErrorContextCallback *saved_context = error_context_stack;
	int code = sqlstate::kInternal;
	char message[1024];
	char detail[1024] = "";
	char hint[512] = "";
	ErrorData *pg_error = nullptr;
	try {
		return body();
	} catch (const PgError &e) {
		pg_error = e.data();
	} catch (const Error &e) {
		code = e.code();
		strlcpy(message, e.what(), sizeof message);
		strlcpy(detail, e.detail().c_str(), sizeof detail);
		strlcpy(hint, e.hint().c_str(), sizeof hint);
	} catch (const std::exception &e) {
		strlcpy(message, e.what(), sizeof message);
	} catch (...) {
		strlcpy(message, "unknown C++ exception", sizeof message);
	}
	PG_exception_stack = saved_stack;
	error_context_stack = saved_context;
	if (pg_error)
		detail::RaiseCaughtPg(pg_error);
	detail::RaiseCaught(code, message, detail, hint);
}

// Pins the search path to pg_catalog alone for the scope: every statement belay runs
// resolves its names, operators and casts the same way whatever the caller's
// search_path. Done here rather than with a SET clause on the functions, which costs a
// GUC save and restore on every call. An error that aborts the (sub)transaction pops it.
class PinnedSearchPath {
public:
	PinnedSearchPath() {
		PgGuard([] {
			OverrideSearchPath path;
			path.schemas = NIL;
			path.addCatalog = true;
			path.addTemp = false;
			path.generation = 0;
			PushOverrideSearchPath(&path);
		});
	}
	~PinnedSearchPath() {
		try {
			PgGuard([] { PopOverrideSearchPath(); });
		} catch (...) {
			// Only an unbalanced stack fails here; the transaction's end clears it.
		}
	}
	PinnedSearchPath(const PinnedSearchPath &) = delete;
	PinnedSearchPath &operator=(const PinnedSearchPath &) = delete;
};

} // namespace belay

// Declares a SQL-callable function whose body runs inside CppGuard, with the search path
// pinned.
#define BELAY_FUNCTION(sql_name, body_function)                                                   \
	extern "C" {                                                                                  \
	PG_FUNCTION_INFO_V1(sql_name);                                                                \
	Datum sql_name(PG_FUNCTION_ARGS) {                                                            \
		return belay::CppGuard([&]() -> Datum {                                                   \
			belay::PinnedSearchPath pinned;                                                       \
			return body_function(fcinfo);                                                         \
		});                                                                                       \
	}                                                                                             \
	}
