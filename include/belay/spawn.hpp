// Inserting tasks: shared by spawn, spawn_many and spawn_child.
#pragma once

#include "belay/guard.hpp"
#include "belay/options.hpp"

#include <optional>
#include <string>

namespace belay {

struct NewTask {
	std::string queue;
	std::string task_name;
	Datum params;              // a jsonb object
	SpawnOptions options;
	Datum parent_task_id = 0;  // 0: none
	std::optional<std::string> parent_step;
};

struct SpawnedTask {
	Datum task_id; // in SPI memory: transfer it before the connection ends
	bool created;
};

// Inserts one task (or finds the one with the same idempotency key). Raises BL003 for an
// unknown queue. Needs SPI connected; notifies the queue when the task is claimable now.
SpawnedTask InsertTask(const NewTask &task, TimestampTz now);

// When the task becomes claimable, from the options: run_at, now + delay_seconds, or now.
TimestampTz AvailableAt(const SpawnOptions &options, TimestampTz now);

} // namespace belay
