// Time-ordered UUIDs (RFC 9562 version 7). Pure C++: no postgres.h.
#pragma once

#include <array>
#include <cstdint>

namespace belay {

using UuidBytes = std::array<uint8_t, 16>;

// A new v7 UUID: 48 bits of Unix milliseconds, 12 bits of sub-millisecond time, 62 random
// bits. Strictly increasing within one process, so a batch sorts in creation order.
UuidBytes NewUuid7();

} // namespace belay
