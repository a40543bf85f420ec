// Task states as SQL text.
#pragma once

// 'scheduled' is internal: a pending task not yet due. Users see it as 'pending'.
#define BELAY_PUBLIC_STATE(column) "CASE " column " WHEN 'scheduled' THEN 'pending' ELSE " column " END"
#define BELAY_TERMINAL_STATES "('completed', 'failed', 'cancelled')"
