// Task states as SQL text.
#pragma once

// 'scheduled' is internal: a pending task not yet due. Users see it as 'pending'.
#define BELAY_PUBLIC_STATE(column) "CASE " column " WHEN 'scheduled' THEN 'pending' ELSE " column " END"
#define BELAY_TERMINAL_STATES "('completed', 'failed', 'cancelled')"

// Fencing: the task of alias t is held by live run $1 at time $2 (running under that run,
// lease not expired). Every run-scoped statement uses it.
#define BELAY_LIVE_RUN                                                                             \
	"t.run_id OPERATOR(pg_catalog.=) $1 AND t.state = 'running' "                                 \
	"AND t.lease_expires_at OPERATOR(pg_catalog.>) $2"
