// Queue notifications handed to the background worker instead of sent by the backend.
//
// PostgreSQL serializes the commits of all transactions that NOTIFY behind one lock held
// through the WAL flush, so a NOTIFY in every spawn costs concurrent spawners their group
// commit. When the worker serves this database, a backend instead records the queues it
// would notify; at commit it publishes them to shared memory and sets the worker's latch,
// and the worker sends them, coalesced, in a transaction of its own that does not wait
// for its flush (a notification is a wake-up hint; workers poll as well).
#pragma once

#include "belay/guard.hpp"

namespace belay {

constexpr int kDeferredSlots = 64;      // distinct queues pending at once; more: notify all
constexpr int kDeferredNameSize = 101;  // a queue name (at most 100 bytes) and its NUL

struct DeferredNotifications {
	slock_t mutex;
	bool overflow; // too many distinct queues: notify every queue
	int count;
	char queues[kDeferredSlots][kDeferredNameSize];
};

void InitDeferredNotifications(DeferredNotifications *area);

// Backend: remember `queue` for this transaction (subtransaction aborts may leave a
// spurious one: harmless).
void DeferNotify(const char *queue);
// Backend, at the end of a transaction: on commit, publish what was deferred; returns
// true if there was anything (the caller wakes the worker). On abort, forget it.
bool PublishDeferred(DeferredNotifications *area, bool commit);
// Worker: takes everything published. Returns the count; *overflow if every queue must
// be notified.
int TakeDeferred(DeferredNotifications *area, char (*out)[kDeferredNameSize], bool *overflow);

} // namespace belay
