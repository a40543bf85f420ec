// The background worker that vacuums belay's tables between autovacuum's rounds.
#pragma once

#include "belay/guard.hpp"

namespace belay {

// Defines its GUCs and, when belay is preloaded, registers the worker (from _PG_init,
// before InitBackgroundWorker reserves the "belay" prefix).
void InitVacuumWorker();

} // namespace belay
