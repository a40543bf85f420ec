// Per-process random numbers for ids and jitter. Pure C++.
#pragma once

#include <cstdint>

namespace belay {

uint64_t RandomBits();
// Uniform in [0, 1).
double RandomUnit();

} // namespace belay
