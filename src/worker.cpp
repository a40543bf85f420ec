// The background worker: keeps time for one database (belay.database). It sleeps on its
// latch until the next due time (at most belay.max_sleep_ms), runs belay.tick() in a
// transaction, and is woken early by any backend whose committed transaction made
// something due sooner.
//
// The loop below owns no C++ objects: PostgreSQL errors longjmp through it freely and
// are caught by its PG_TRY; the tick's own C++ runs behind CppGuard inside belay.tick().
#include "belay/worker.hpp"

extern "C" {
#include "access/xlog.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace belay {
namespace {

constexpr uint64 kWakeMeAlways = PG_UINT64_MAX; // while ticking: every due time is sooner

struct SharedState {
	pg_atomic_uint32 worker_procno; // the worker's PGPROC number, or -1 when it is not running
	pg_atomic_uint64 next_wake;     // when the worker plans to wake (TimestampTz)
	pg_atomic_uint32 database;      // the database it serves, once connected
};

SharedState *shared = nullptr;
shmem_request_hook_type previous_shmem_request = nullptr;
shmem_startup_hook_type previous_shmem_startup = nullptr;

char *database_name = nullptr;
int max_sleep_ms = 1000;
int batch_size = 1000;
int error_backoff_ms = 1000;

TimestampTz pending_wake = 0; // soonest due time this transaction created; 0: none

void RequestSharedMemory() {
	if (previous_shmem_request)
		previous_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

void StartupSharedMemory() {
	if (previous_shmem_startup)
		previous_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found = false;
	shared = static_cast<SharedState *>(ShmemInitStruct("belay", sizeof(SharedState), &found));
	if (!found) {
		pg_atomic_init_u32(&shared->worker_procno, static_cast<uint32>(-1));
		pg_atomic_init_u64(&shared->next_wake, 0);
		pg_atomic_init_u32(&shared->database, InvalidOid);
	}
	LWLockRelease(AddinShmemInitLock);
}

// Sets the worker's latch after commit, never mid-transaction: the worker must see what
// we committed when it wakes.
void OnTransactionEnd(XactEvent event, void *) {
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_ABORT &&
	    event != XACT_EVENT_PARALLEL_ABORT)
		return;
	TimestampTz due = pending_wake;
	pending_wake = 0;
	if (due == 0 || shared == nullptr || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		return;
	if (static_cast<uint64>(due) >= pg_atomic_read_u64(&shared->next_wake))
		return;
	uint32 procno = pg_atomic_read_u32(&shared->worker_procno);
	if (procno != static_cast<uint32>(-1) && procno < ProcGlobal->allProcCount)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

void ForgetWorker(int, Datum) {
	pg_atomic_write_u32(&shared->database, InvalidOid);
	pg_atomic_write_u32(&shared->worker_procno, static_cast<uint32>(-1));
	pg_atomic_write_u64(&shared->next_wake, 0);
}

// One tick in its own transaction. Returns how long to sleep, in milliseconds.
long RunTick() {
	long sleep_ms = max_sleep_ms;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "belay tick");
	// Idle while the extension is absent or being created, and during recovery.
	if (!RecoveryInProgress() && !creating_extension && OidIsValid(get_extension_oid("belay", true))) {
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "belay worker: SPI_connect failed");
		Datum args[1] = {Int32GetDatum(batch_size)};
		Oid types[1] = {INT4OID};
		int rc = SPI_execute_with_args("SELECT woken, timed_out, reclaimed, cancelled, next_due_at "
		                               "FROM belay.tick(pg_catalog.clock_timestamp(), $1)",
		                               1, types, args, nullptr, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "belay worker: tick failed: %s", SPI_result_code_string(rc));
		bool batch_full = false;
		for (int column = 1; column <= 4; ++column) {
			bool null = false;
			int32 count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &null));
			batch_full = batch_full || count >= batch_size;
		}
		bool no_due = true;
		Datum due = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &no_due);
		if (batch_full) {
			sleep_ms = 0; // more work is waiting
		} else if (!no_due) {
			long seconds = 0;
			int micros = 0;
			TimestampDifference(GetCurrentTimestamp(), DatumGetTimestampTz(due), &seconds, &micros);
			long until_due = seconds * 1000 + (micros + 999) / 1000; // round up: never wake early
			sleep_ms = Min(sleep_ms, until_due);
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, nullptr);
	return sleep_ms;
}

void WorkerLoop() {
	MemoryContext tick_context = AllocSetContextCreate(TopMemoryContext, "belay tick", ALLOCSET_DEFAULT_SIZES);
	for (;;) {
		long sleep_ms = error_backoff_ms;
		MemoryContextSwitchTo(tick_context);
		PG_TRY();
		{
			sleep_ms = RunTick();
		}
		PG_CATCH();
		{
			// Survive our own errors: report, roll back, back off, go on.
			MemoryContextSwitchTo(tick_context);
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			pgstat_report_activity(STATE_IDLE, nullptr);
			sleep_ms = error_backoff_ms;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(tick_context);

		if (sleep_ms > 0) {
			TimestampTz wake = GetCurrentTimestamp() + sleep_ms * 1000;
			pg_atomic_write_u64(&shared->next_wake, static_cast<uint64>(wake));
			(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		// From here until we sleep again, every commit with a due time sets our latch, so
		// nothing committed during the tick is missed.
		pg_atomic_write_u64(&shared->next_wake, kWakeMeAlways);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

void DefineSettings() {
	// A PGC_POSTMASTER setting can only be defined while preloading; a backend that loads
	// belay later (no worker) must not define it.
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("belay.database", "Database the belay background worker serves.", nullptr,
		                           &database_name, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("belay.max_sleep_ms", "Longest the belay worker sleeps between two ticks.",
	                        "It wakes sooner when something falls due.", &max_sleep_ms, 1000, 10, 60000,
	                        PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("belay.batch_size", "Most tasks the belay worker handles per kind of work per tick.",
	                        nullptr, &batch_size, 1000, 1, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("belay.error_backoff_ms", "How long the belay worker waits after a failed tick.",
	                        nullptr, &error_backoff_ms, 1000, 10, 600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
}

} // namespace

void InitBackgroundWorker() {
	DefineSettings();
	MarkGUCPrefixReserved("belay");
	if (!process_shared_preload_libraries_in_progress)
		return; // loaded by a backend: the SQL API works; timekeeping needs preloading
	previous_shmem_request = shmem_request_hook;
	shmem_request_hook = RequestSharedMemory;
	previous_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = StartupSharedMemory;
	RegisterXactCallback(OnTransactionEnd, nullptr);

	BackgroundWorker worker;
	memset(&worker, 0, sizeof worker);
	strlcpy(worker.bgw_name, "belay worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "belay worker", BGW_MAXLEN);
	strlcpy(worker.bgw_library_name, "belay", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "belay_worker_main", BGW_MAXLEN);
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1; // seconds: a crashed worker is back quickly
	RegisterBackgroundWorker(&worker);
}

bool WorkerServesThisDatabase() {
	return shared != nullptr && pg_atomic_read_u32(&shared->worker_procno) != static_cast<uint32>(-1) &&
	       pg_atomic_read_u32(&shared->database) == MyDatabaseId;
}

void WakeWorkerBy(TimestampTz due) {
	if (shared == nullptr)
		return;
	if (pending_wake == 0 || due < pending_wake)
		pending_wake = due;
}

} // namespace belay

extern "C" {
PGDLLEXPORT void belay_worker_main(Datum);
void belay_worker_main(Datum) {
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(belay::database_name, nullptr, 0);
	pgstat_report_appname("belay worker");
	pg_atomic_write_u32(&belay::shared->worker_procno, static_cast<uint32>(MyProc->pgprocno));
	pg_atomic_write_u32(&belay::shared->database, MyDatabaseId);
	pg_atomic_write_u64(&belay::shared->next_wake, belay::kWakeMeAlways);
	before_shmem_exit(belay::ForgetWorker, 0);
	belay::WorkerLoop();
}
}
