// The vacuum worker: keeps belay's tables from bloating under queue churn.
//
// Every task is inserted, updated two or three times and deleted by cleanup(), so belay's
// tables make dead tuples as fast as they do work. Their space is reused only once VACUUM
// has recorded it in the free space map; until then new tasks extend the table. Autovacuum
// looks at a database once per autovacuum_naptime (a minute by default), and a busy queue
// makes millions of dead tuples in a minute. This worker checks belay's tables every
// belay.vacuum_interval_ms and vacuums each one whose dead tuples have reached
// belay.vacuum_threshold plus a tenth of its live ones, so a table's size stays bounded by
// the work of about one interval instead of one naptime.
//
// It is a process of its own, apart from the timekeeping worker: a vacuum of a large table
// takes seconds, and the due times the other worker keeps must not wait for it.
//
// Like worker.cpp, the loop owns no C++ objects: PostgreSQL errors longjmp through it and
// are caught by its PG_TRY.
#include "belay/vacuum_worker.hpp"

#include "belay/worker.hpp"

extern "C" {
#include "access/xlog.h"
#include "commands/extension.h"
#include "commands/vacuum.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace belay {
namespace {

int vacuum_interval_ms = 1000;
int vacuum_threshold = 10000;

// The tables that churn; queues and events change rarely and are left to autovacuum.
constexpr int kTables = 4;
const char *const kTableNames[kTables] = {"tasks", "run_history", "checkpoints", "waits"};

// Marks in `due` the tables with enough dead tuples to vacuum, by the statistics system's
// counts (pg_stat_user_tables).
void FindTablesToVacuum(bool due[kTables]) {
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (ExtensionReady()) {
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "belay vacuum: SPI_connect failed");
		Datum args[1] = {Int32GetDatum(vacuum_threshold)};
		Oid types[1] = {INT4OID};
		int rc = SPI_execute_with_args("SELECT relname::text FROM pg_catalog.pg_stat_user_tables "
		                               "WHERE schemaname OPERATOR(pg_catalog.=) 'belay' "
		                               "AND n_dead_tup OPERATOR(pg_catalog.>=) "
		                               "($1 OPERATOR(pg_catalog.+) (n_live_tup OPERATOR(pg_catalog./) 10)) "
		                               // Not one that autovacuum is vacuuming now.
		                               "AND relid OPERATOR(pg_catalog.<>) ALL "
		                               "(SELECT relid FROM pg_catalog.pg_stat_progress_vacuum)",
		                               1, types, args, nullptr, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "belay vacuum: cannot read the table statistics: %s", SPI_result_code_string(rc));
		for (uint64 row = 0; row < SPI_processed; ++row) {
			const char *name = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1);
			for (int table = 0; table < kTables; ++table)
				if (strcmp(name, kTableNames[table]) == 0)
					due[table] = true;
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
}

// VACUUM as a top-level statement, the way postgres.c runs one: it commits our transaction,
// vacuums in transactions of its own, and starts one for us to commit. SKIP_LOCKED: a table
// that autovacuum (or anyone) is vacuuming now is skipped, not waited for.
//
// The parsed statement lives in `context`, not in the transaction's memory: VACUUM commits
// that transaction and still reads the statement (the table's name) afterwards. Its own
// working memory goes under PortalContext, which a background worker lacks; `context` is
// reset after every round, error or not, so nothing leaks.
void VacuumTable(const char *table, MemoryContext context) {
	char sql[64];
	snprintf(sql, sizeof sql, "VACUUM (SKIP_LOCKED) belay.%s", table);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(context);
	PortalContext = context;
	pgstat_report_activity(STATE_RUNNING, sql);
	List *parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	RawStmt *raw = linitial_node(RawStmt, parsed);
	ParseState *pstate = make_parsestate(nullptr);
	pstate->p_sourcetext = sql;
	ExecVacuum(pstate, castNode(VacuumStmt, raw->stmt), true);
	CommitTransactionCommand();
	PortalContext = nullptr;
	MemoryContextSwitchTo(context);
	pgstat_report_activity(STATE_IDLE, nullptr);
	elog(DEBUG1, "belay vacuum: vacuumed belay.%s", table);
}

void VacuumLoop() {
	MemoryContext round_context = AllocSetContextCreate(TopMemoryContext, "belay vacuum", ALLOCSET_DEFAULT_SIZES);
	TimestampTz round_start = GetCurrentTimestamp();
	for (;;) {
		// Rounds start every interval, not an interval after the last one ended: a round
		// that vacuums a large table takes a while, and the churn meanwhile counts against
		// the bound. Disabled (0): wait for a configuration reload, which sets our latch.
		long sleep_ms = 60000;
		if (vacuum_interval_ms > 0) {
			long seconds = 0;
			int micros = 0;
			TimestampDifference(GetCurrentTimestamp(), round_start + vacuum_interval_ms * 1000L, &seconds, &micros);
			sleep_ms = seconds * 1000 + micros / 1000;
		}
		if (sleep_ms > 0)
			(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		round_start = GetCurrentTimestamp();
		if (vacuum_interval_ms == 0)
			continue;
		MemoryContextSwitchTo(round_context);
		PG_TRY();
		{
			bool due[kTables] = {false, false, false, false};
			FindTablesToVacuum(due);
			for (int table = 0; table < kTables; ++table)
				if (due[table])
					VacuumTable(kTableNames[table], round_context);
		}
		PG_CATCH();
		{
			// Survive our own errors: report, roll back, try again next round.
			PortalContext = nullptr;
			MemoryContextSwitchTo(round_context);
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			pgstat_report_activity(STATE_IDLE, nullptr);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_context);
	}
}

} // namespace

void InitVacuumWorker() {
	DefineCustomIntVariable("belay.vacuum_interval_ms", "How often the belay vacuum worker checks belay's tables.",
	                        "0 turns it off and leaves belay's tables to autovacuum alone.", &vacuum_interval_ms,
	                        1000, 0, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("belay.vacuum_threshold",
	                        "Dead tuples that make the belay vacuum worker vacuum a table, plus a tenth of its live "
	                        "tuples.",
	                        nullptr, &vacuum_threshold, 10000, 0, INT_MAX, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	if (!process_shared_preload_libraries_in_progress)
		return;

	RegisterDatabaseWorker("belay vacuum", "belay_vacuum_main", 10);
}

} // namespace belay

extern "C" {
PGDLLEXPORT void belay_vacuum_main(Datum);
void belay_vacuum_main(Datum) {
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	// The database the timekeeping worker serves (belay.database, defined in worker.cpp).
	BackgroundWorkerInitializeConnection(GetConfigOption("belay.database", false, false), nullptr, 0);
	pgstat_report_appname("belay vacuum");
	belay::VacuumLoop();
}
}
