// Fencing: the run_id is the token of every run-scoped call.
#pragma once

#include "belay/guard.hpp"

namespace belay {

// Called when a run-scoped statement matched no live run: finds out why and raises
// BL002 if the run was ended by a cancel, else BL001 (lease expired, run ended, or
// never a run). Needs SPI connected.
[[noreturn]] void ThrowNotLive(Datum run_id);

} // namespace belay
