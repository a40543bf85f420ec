// The background worker that keeps time, and how backends wake it early.
#pragma once

#include "belay/guard.hpp"

namespace belay {

// Registers the worker, its shared memory and GUCs (from _PG_init).
void InitBackgroundWorker();

// For belay's background processes, inside a transaction: the extension exists in their
// database and is not being created, and the server is not in recovery. Otherwise they idle.
bool ExtensionReady();

// Registers a background process of belay's that connects to a database and is started
// again restart_seconds after it exits with an error (while preloading, from _PG_init).
void RegisterDatabaseWorker(const char *name, const char *function, int restart_seconds);

// A transaction made something due at `due` (a delayed task, a sleep, a wait deadline,
// a lease, a cancellation deadline). If that is sooner than the worker plans to wake,
// it is woken when the transaction commits.
void WakeWorkerBy(TimestampTz due);

// True while the background worker runs and serves this backend's database: it then
// makes due tasks pending on time, and claim() need not look for them itself.
bool WorkerServesThisDatabase();

// Hands a queue notification to the worker (deferred_notify.hpp); false if the caller
// must send it itself (no worker for this database, or we are the worker).
bool DeferNotifyToWorker(const char *queue);

} // namespace belay
