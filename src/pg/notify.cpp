// Coalesced queue notifications: sent by the backend, or handed to the background worker
// (deferred_notify.hpp).
#include "belay/notify.hpp"

#include "belay/args.hpp"
#include "belay/worker.hpp"

#include <set>

namespace belay {

void NotifyQueue(const std::string &queue) {
	// Keyed by the subtransaction too: a notification queued in a subtransaction that
	// rolls back is discarded by PostgreSQL, so a later one must be sent again.
	static LocalTransactionId seen_transaction = InvalidLocalTransactionId;
	static SubTransactionId seen_subtransaction = InvalidSubTransactionId;
	static std::set<std::string> notified;

	LocalTransactionId transaction = MyProc->lxid;
	SubTransactionId subtransaction = GetCurrentSubTransactionId();
	if (transaction != seen_transaction || subtransaction != seen_subtransaction) {
		notified.clear();
		seen_transaction = transaction;
		seen_subtransaction = subtransaction;
	}
	if (!notified.insert(queue).second)
		return;
	if (DeferNotifyToWorker(queue.c_str()))
		return;
	PgGuard([&] { Async_Notify("belay", queue.c_str()); });
}

void NotifyFinished(Datum task_id) {
	std::string id = UuidToString(task_id);
	PgGuard([&] { Async_Notify("belay_finished", id.c_str()); });
}

} // namespace belay
