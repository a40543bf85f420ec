// The background worker: keeps time for one database (belay.database). It sleeps on its
// latch until the next due time (at most belay.max_sleep_ms), runs belay.tick() in a
// transaction, and is woken early by any backend whose committed transaction made
// something due sooner.
//
// The loop below owns no C++ objects: PostgreSQL errors longjmp through it freely and
// are caught by its PG_TRY; the tick's own C++ runs behind CppGuard inside belay.tick().
#include "belay/worker.hpp"

#include "belay/deferred_notify.hpp"

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
constexpr long kIdleRetryMs = 10; // a due row that is locked elsewhere is retried this often

struct SharedState {
	pg_atomic_uint32 worker_procno; // the worker's PGPROC number, or -1 when it is not running
	pg_atomic_uint64 next_wake;     // when the worker plans to wake (TimestampTz)
	pg_atomic_uint32 database;      // the database it serves, once connected
	pg_atomic_uint32 tick_requested; // a backend made something due sooner than next_wake
	DeferredNotifications notifications; // queues to NOTIFY on the backends' behalf
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
		pg_atomic_init_u32(&shared->tick_requested, 0);
		InitDeferredNotifications(&shared->notifications);
	}
	LWLockRelease(AddinShmemInitLock);
}

void SetWorkerLatch() {
	uint32 procno = pg_atomic_read_u32(&shared->worker_procno);
	if (procno != static_cast<uint32>(-1) && procno < ProcGlobal->allProcCount)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

// Wakes the worker after commit, never mid-transaction: it must see what we committed.
// It is woken when we deferred notifications to it, or made something due sooner than it
// plans to wake.
void OnTransactionEnd(XactEvent event, void *) {
	bool commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT;
	bool abort = event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT;
	if (!commit && !abort)
		return;
	TimestampTz due = pending_wake;
	pending_wake = 0;
	if (shared == nullptr)
		return;
	bool notify = PublishDeferred(&shared->notifications, commit);
	bool sooner = commit && due != 0 && static_cast<uint64>(due) < pg_atomic_read_u64(&shared->next_wake);
	if (sooner)
		pg_atomic_write_u32(&shared->tick_requested, 1);
	if (notify || sooner)
		SetWorkerLatch();
}

// Sends the notifications the backends deferred to us, in a transaction that does not
// wait for its commit to be flushed.
void SendDeferredNotifications() {
	static char queues[kDeferredSlots][kDeferredNameSize];
	bool overflow = false;
	int count = TakeDeferred(&shared->notifications, queues, &overflow);
	if (count == 0 && !overflow)
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (overflow) {
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "belay worker: SPI_connect failed");
		if (SPI_execute("SELECT queue FROM belay.queues", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "belay worker: cannot list the queues");
		for (uint64 row = 0; row < SPI_processed; ++row)
			Async_Notify("belay", SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1));
		SPI_finish();
		PopActiveSnapshot();
	} else {
		for (int i = 0; i < count; ++i)
			Async_Notify("belay", queues[i]);
	}
	CommitTransactionCommand();
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
	// A tick is a handful of index probes: a statement that runs long is a fault to report
	// and recover from, not to wait on. Plans are made for each tick's data, not kept
	// generic from an emptier table.
	set_config_option("statement_timeout", "60s", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	set_config_option("plan_cache_mode", "force_custom_plan", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
	                  false);
	if (ExtensionReady()) {
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
		bool progress = false;
		for (int column = 1; column <= 4; ++column) {
			bool null = false;
			int32 count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &null));
			batch_full = batch_full || count >= batch_size;
			progress = progress || count > 0;
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
			// Something due that this tick could not take (another transaction holds its
			// row): do not spin on it.
			if (!progress)
				until_due = Max(until_due, kIdleRetryMs);
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

// A failure to notify (say, a full notification queue) is logged and does not keep the
// ticks from running.
void SendDeferredNotificationsSafely() {
	MemoryContext context = CurrentMemoryContext;
	PG_TRY();
	{
		SendDeferredNotifications();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
	}
	PG_END_TRY();
}

void WorkerLoop() {
	MemoryContext tick_context = AllocSetContextCreate(TopMemoryContext, "belay tick", ALLOCSET_DEFAULT_SIZES);
	TimestampTz next_tick = 0; // tick at once
	for (;;) {
		// From here until we sleep again, every commit with a due time asks for a tick, so
		// nothing committed while we work is missed.
		pg_atomic_write_u64(&shared->next_wake, kWakeMeAlways);
		MemoryContextSwitchTo(tick_context);
		SendDeferredNotificationsSafely();
		PG_TRY();
		{
			// Most wake-ups only bring notifications to send: tick when something is due
			// or a backend made something due sooner.
			bool requested = pg_atomic_exchange_u32(&shared->tick_requested, 0) != 0;
			if (requested || GetCurrentTimestamp() >= next_tick) {
				long until_due_ms = RunTick();
				next_tick = GetCurrentTimestamp() + until_due_ms * 1000;
			}
		}
		PG_CATCH();
		{
			// Survive our own errors: report, roll back, back off, go on.
			MemoryContextSwitchTo(tick_context);
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			pgstat_report_activity(STATE_IDLE, nullptr);
			next_tick = GetCurrentTimestamp() + error_backoff_ms * 1000L;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(tick_context);

		long seconds = 0;
		int micros = 0;
		TimestampDifference(GetCurrentTimestamp(), next_tick, &seconds, &micros);
		long sleep_ms = seconds * 1000 + (micros + 999) / 1000; // round up: never wake early
		pg_atomic_write_u64(&shared->next_wake, static_cast<uint64>(next_tick));
		if (sleep_ms > 0 && pg_atomic_read_u32(&shared->tick_requested) == 0) {
			(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
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

	RegisterDatabaseWorker("belay worker", "belay_worker_main", 1); // a crashed worker is back quickly
}

bool ExtensionReady() {
	return !RecoveryInProgress() && !creating_extension && OidIsValid(get_extension_oid("belay", true));
}

void RegisterDatabaseWorker(const char *name, const char *function, int restart_seconds) {
	BackgroundWorker worker;
	memset(&worker, 0, sizeof worker);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	strlcpy(worker.bgw_library_name, "belay", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = restart_seconds;
	RegisterBackgroundWorker(&worker);
}

bool WorkerServesThisDatabase() {
	return shared != nullptr && pg_atomic_read_u32(&shared->worker_procno) != static_cast<uint32>(-1) &&
	       pg_atomic_read_u32(&shared->database) == MyDatabaseId;
}

bool DeferNotifyToWorker(const char *queue) {
	if (!WorkerServesThisDatabase() || IsBackgroundWorker)
		return false;
	DeferNotify(queue);
	return true;
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
