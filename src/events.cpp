// emit_event: store the latest payload and wake every task awaiting the event.
#include "belay/args.hpp"
#include "belay/lifecycle.hpp"
#include "belay/notify.hpp"
#include "belay/queues.hpp"
#include "belay/spi.hpp"
#include "belay/validation.hpp"

namespace belay {
namespace {

Datum EmitEvent(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::string queue = args.Text(0, "queue");
	CheckQueueName(queue);
	std::string event = args.Text(1, "event");
	CheckName(event, "event");
	std::optional<Datum> payload = args.OptJson(2);
	TimestampTz now = Now();

	static spi::Statement store(
	    "INSERT INTO belay.events (queue, event, payload, emitted_at) VALUES ($1, $2, $3, $4) "
	    "ON CONFLICT (queue, event) DO UPDATE SET payload = EXCLUDED.payload, emitted_at = EXCLUDED.emitted_at",
	    {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID});
	// Waiting tasks are locked in task_id order (lifecycle.hpp), their waits settled with
	// the payload, and they become pending.
	static spi::Statement wake(
	    "WITH waiting AS ("
	    " SELECT w.task_id FROM belay.waits w JOIN belay.tasks t ON t.task_id OPERATOR(pg_catalog.=) w.task_id"
	    " WHERE w.queue OPERATOR(pg_catalog.=) $1 AND w.event OPERATOR(pg_catalog.=) $2 AND t.state = 'waiting'"
	    " ORDER BY w.task_id FOR UPDATE OF t), "
	    "settled AS ("
	    " DELETE FROM belay.waits w USING waiting WHERE w.task_id OPERATOR(pg_catalog.=) waiting.task_id"
	    " RETURNING w.task_id, w.step, w.run_id), "
	    "steps AS ("
	    " INSERT INTO belay.checkpoints (task_id, step, value, run_id, updated_at)"
	    " SELECT task_id, step, pg_catalog.jsonb_build_object('payload', $3, 'timed_out', false), run_id, $4"
	    " FROM settled ON CONFLICT (task_id, step) DO NOTHING) "
	    "UPDATE belay.tasks t SET state = 'pending', available_at = $4 FROM settled s "
	    "WHERE t.task_id OPERATOR(pg_catalog.=) s.task_id RETURNING t.task_id",
	    {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID});

	spi::Connection spi;
	RequireQueue(queue);
	LockEvent(queue, event);
	spi::Params params;
	params.Text(queue).Text(event);
	if (payload)
		params.Add(*payload);
	else
		params.Null();
	params.Timestamptz(now);
	store.Run(params);
	uint64 woken = wake.Run(params);
	if (woken > 0)
		NotifyQueue(queue);
	return Int32GetDatum(static_cast<int32>(woken));
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_emit_event, belay::EmitEvent)
