// Connections and the statements the client prepares on each.
#include "session.hpp"

namespace belay {
namespace {

struct Statement {
	const char *name;
	const char *sql;
};

// Every statement the client runs, prepared once per connection.
const Statement kStatements[] = {
    {"belay_create_queue", "SELECT belay.create_queue($1, $2::jsonb)"},
    {"belay_drop_queue", "SELECT belay.drop_queue($1)"},
    {"belay_spawn", "SELECT task_id, created FROM belay.spawn($1, $2, $3::jsonb, $4::jsonb)"},
    {"belay_spawn_many", "SELECT task_id, created FROM belay.spawn_many($1, $2, $3::jsonb, $4::jsonb)"},
    {"belay_emit_event", "SELECT belay.emit_event($1, $2, $3::jsonb)"},
    {"belay_cancel", "SELECT belay.cancel($1::uuid)"},
    {"belay_retry", "SELECT belay.retry($1::uuid)"},
    {"belay_watch", "SELECT belay.watch($1::uuid)"},
    {"belay_cleanup", "SELECT belay.cleanup($1, pg_catalog.make_interval(secs => $2::float8))"},
    {"belay_task",
     "SELECT task_id, queue, task_name, state, attempt, max_attempts, params, result, error, parent_task_id, "
     "created_at, available_at, finished_at FROM belay.task($1::uuid)"},
    // Claims and heartbeats commit without waiting for the WAL flush (set for their own
    // transaction only): a claim lost in a crash leaves the task pending, and any later
    // synchronous commit (a checkpoint, a completion) flushes it first. The lease's expiry
    // is not read: the Worker heartbeats on its own clock, and formatting a timestamptz
    // per task costs the claim about 3%.
    {"belay_claim",
     "SELECT c.run_id, c.task_id, c.task_name, c.params, c.headers, c.attempt, c.checkpoints "
     "FROM (SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS async, "
     "belay.claim($1, $2, $3::integer, $4::numeric) AS c"},
    {"belay_complete", "SELECT belay.complete($1::uuid, $2::jsonb)"},
    // Results travel as one JSON array; a JSON null result is stored as no result.
    // The Worker only counts the outcomes: one row comes back, not one per run.
    {"belay_complete_many",
     "SELECT count(*) FILTER (WHERE completed), count(*) FILTER (WHERE NOT completed) "
     "FROM belay.complete_many($1::uuid[], ARRAY("
     " SELECT NULLIF(e.value, 'null'::jsonb) FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(value, n)"
     " ORDER BY e.n))"},
    {"belay_complete_many_no_results",
     "SELECT count(*) FILTER (WHERE completed), count(*) FILTER (WHERE NOT completed) "
     "FROM belay.complete_many($1::uuid[], NULL)"},
    {"belay_fail", "SELECT belay.fail($1::uuid, $2::jsonb, NULL, $3::boolean)"},
    {"belay_heartbeat",
     "SELECT belay.heartbeat($1::uuid, $2::numeric) "
     "FROM (SELECT pg_catalog.set_config('synchronous_commit', 'off', true)) AS async"},
    {"belay_set_checkpoint", "SELECT belay.set_checkpoint($1::uuid, $2, $3::jsonb)"},
    {"belay_sleep_until", "SELECT belay.sleep($1::uuid, $2, $3::timestamptz)"},
    {"belay_sleep_for", "SELECT belay.sleep($1::uuid, $2, $3::numeric)"},
    {"belay_await_event",
     "SELECT suspended, payload, timed_out FROM belay.await_event($1::uuid, $2, $3, $4::numeric)"},
    {"belay_spawn_child", "SELECT belay.spawn_child($1::uuid, $2, $3, $4::jsonb, $5::jsonb)"},
    {"belay_join", "SELECT suspended, state, result, error FROM belay.join($1::uuid, $2, $3::uuid, $4::numeric)"},
};

} // namespace

Session::Session(std::string conninfo) : conninfo_(std::move(conninfo)) {}

pqxx::connection &Session::Connection() {
	if (!connection_) {
		retired_.reset();
		try {
			auto connection = std::make_unique<pqxx::connection>(conninfo_);
			for (const Statement &statement : kStatements)
				connection->prepare(statement.name, statement.sql);
			connection_ = std::move(connection);
		} catch (...) {
			RethrowAsBelayError();
		}
	}
	return *connection_;
}

void Session::Drop() {
	if (connection_)
		retired_ = std::move(connection_);
}

} // namespace belay
