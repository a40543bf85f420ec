// Deferred queue notifications: a per-backend list for the transaction, a shared set the
// worker drains. Plain arrays and a spinlock: this runs in transaction callbacks, where
// nothing may throw or allocate.
#include "belay/deferred_notify.hpp"

extern "C" {
#include "storage/spin.h"
}

#include <cstring>

namespace belay {
namespace {

// This backend's queues for the current transaction.
char local_queues[kDeferredSlots][kDeferredNameSize];
int local_count = 0;
bool local_overflow = false;

bool Contains(const char (*queues)[kDeferredNameSize], int count, const char *queue) {
	for (int i = 0; i < count; ++i)
		if (strcmp(queues[i], queue) == 0)
			return true;
	return false;
}

} // namespace

void InitDeferredNotifications(DeferredNotifications *area) {
	SpinLockInit(&area->mutex);
	area->overflow = false;
	area->count = 0;
}

void DeferNotify(const char *queue) {
	if (local_overflow || Contains(local_queues, local_count, queue))
		return;
	if (local_count == kDeferredSlots) {
		local_overflow = true;
		return;
	}
	strlcpy(local_queues[local_count++], queue, kDeferredNameSize);
}

bool PublishDeferred(DeferredNotifications *area, bool commit) {
	bool any = local_count > 0 || local_overflow;
	if (commit && any) {
		SpinLockAcquire(&area->mutex);
		area->overflow = area->overflow || local_overflow;
		for (int i = 0; i < local_count && !area->overflow; ++i) {
			if (Contains(area->queues, area->count, local_queues[i]))
				continue;
			if (area->count == kDeferredSlots)
				area->overflow = true;
			else
				memcpy(area->queues[area->count++], local_queues[i], kDeferredNameSize);
		}
		SpinLockRelease(&area->mutex);
	}
	local_count = 0;
	local_overflow = false;
	return commit && any;
}

int TakeDeferred(DeferredNotifications *area, char (*out)[kDeferredNameSize], bool *overflow) {
	SpinLockAcquire(&area->mutex);
	int count = area->count;
	memcpy(out, area->queues, sizeof(area->queues[0]) * static_cast<size_t>(count));
	*overflow = area->overflow;
	area->count = 0;
	area->overflow = false;
	SpinLockRelease(&area->mutex);
	return count;
}

} // namespace belay
