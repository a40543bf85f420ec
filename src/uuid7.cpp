// UUIDv7 generation (clock for order, a per-process random stream for uniqueness), and
// the random numbers behind it.
#include "belay/uuid7.hpp"

#include "belay/random.hpp"

#include <chrono>
#include <random>
#include <unistd.h>

namespace belay {
namespace {

// Seeded lazily in each process: backends fork from the postmaster, and a stream seeded
// there would repeat itself in every backend.
std::mt19937_64 &RandomStream() {
	static pid_t seeded_in = 0;
	static std::mt19937_64 stream;
	if (seeded_in != getpid()) {
		std::random_device device;
		std::seed_seq seed{device(), device(), device(), device(), static_cast<unsigned>(getpid())};
		stream.seed(seed);
		seeded_in = getpid();
	}
	return stream;
}

} // namespace

uint64_t RandomBits() { return RandomStream()(); }

double RandomUnit() { return static_cast<double>(RandomBits() >> 11) * 0x1.0p-53; }

UuidBytes NewUuid7() {
	static uint64_t last_stamp = 0; // (milliseconds << 12) | sub-millisecond fraction
	auto now = std::chrono::system_clock::now().time_since_epoch();
	uint64_t micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now).count());
	uint64_t stamp = ((micros / 1000) << 12) | (((micros % 1000) * 4096) / 1000);
	if (stamp <= last_stamp)
		stamp = last_stamp + 1; // same tick, or the clock stepped back: stay increasing
	last_stamp = stamp;

	uint64_t millis = stamp >> 12;
	uint64_t fraction = stamp & 0xFFF;
	uint64_t random = RandomBits();

	UuidBytes id;
	for (int i = 0; i < 6; ++i)
		id[i] = static_cast<uint8_t>(millis >> (40 - 8 * i));
	id[6] = static_cast<uint8_t>(0x70 | (fraction >> 8));
	id[7] = static_cast<uint8_t>(fraction);
	id[8] = static_cast<uint8_t>(0x80 | ((random >> 56) & 0x3F));
	for (int i = 9; i < 16; ++i)
		id[i] = static_cast<uint8_t>(random >> (8 * (15 - i)));
	return id;
}

} // namespace belay
