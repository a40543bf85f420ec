// NOTIFY belay, '<queue>' when a queue gains claimable work.
#pragma once

#include "belay/guard.hpp"

#include <string>

namespace belay {

// Queues the notification (PostgreSQL delivers it at commit). At most once per queue per
// (sub)transaction: repeats are dropped here before they reach PostgreSQL.
void NotifyQueue(const std::string &queue);

// NOTIFY belay_finished, '<task_id>': a watched task (belay.watch) reached a terminal state.
void NotifyFinished(Datum task_id);

} // namespace belay
