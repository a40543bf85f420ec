// NOTIFY belay, '<queue>' when a queue gains claimable work.
#pragma once

#include <string>

namespace belay {

// Queues the notification (PostgreSQL delivers it at commit). At most once per queue per
// (sub)transaction: repeats are dropped here before they reach PostgreSQL.
void NotifyQueue(const std::string &queue);

} // namespace belay
