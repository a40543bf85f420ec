// create_queue, drop_queue, list_queues.
#include "belay/args.hpp"
#include "belay/lifecycle.hpp"
#include "belay/options.hpp"
#include "belay/queues.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"
#include "belay/validation.hpp"

namespace belay {

void RequireQueue(const std::string &queue) {
	static spi::Statement exists("SELECT 1 FROM belay.queues WHERE queue OPERATOR(pg_catalog.=) $1", {TEXTOID});
	spi::Params params;
	params.Text(queue);
	if (exists.Run(params) == 0)
		throw Error(sqlstate::kUnknownQueue, "queue \"" + queue + "\" does not exist", {},
		            "Create it with belay.create_queue().");
}

namespace {

Datum CreateQueue(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::string queue = args.Text(0, "queue");
	CheckQueueName(queue);
	QueuePolicy policy = ParseQueuePolicy(args.JsonText(1, "policy", JsonShape::Object));
	std::string policy_json = policy.ToJson();

	// An existing queue keeps its policy unless a non-empty one is given: a worker that
	// calls create_queue(name) at start-up must not wipe an operator's policy.
	static spi::Statement upsert(
	    "INSERT INTO belay.queues AS q (queue, policy) VALUES ($1, $2::jsonb) "
	    "ON CONFLICT (queue) DO UPDATE SET policy = EXCLUDED.policy "
	    "WHERE EXCLUDED.policy OPERATOR(pg_catalog.<>) '{}'::jsonb",
	    {TEXTOID, TEXTOID});
	spi::Connection spi;
	spi::Params params;
	params.Text(queue).Text(policy_json);
	upsert.Run(params);
	PG_RETURN_VOID();
}

Datum DropQueue(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::string queue = args.Text(0, "queue");
	CheckQueueName(queue);
	static spi::Statement unfinished("SELECT pg_catalog.array_agg(task_id) FROM belay.tasks "
	                                 "WHERE queue OPERATOR(pg_catalog.=) $1 AND state NOT IN " BELAY_TERMINAL_STATES,
	                                 {TEXTOID});
	// The queue row first: deleting it waits for spawns in flight (they lock it FOR KEY
	// SHARE) and makes later ones find no queue. Then its tasks, with what they own
	// (run_history, checkpoints and waits go by their foreign keys).
	static spi::Statement drop("DELETE FROM belay.queues WHERE queue OPERATOR(pg_catalog.=) $1", {TEXTOID});
	static spi::Statement drop_tasks("DELETE FROM belay.tasks WHERE queue OPERATOR(pg_catalog.=) $1", {TEXTOID});
	spi::Connection spi;
	RequireQueue(queue);
	// Its unfinished tasks are cancelled first, with their descendants in other queues,
	// so parents elsewhere that join them wake up ('cancelled') instead of waiting for
	// ever, and no child is left running without its parent.
	spi::Params params;
	params.Text(queue);
	unfinished.Run(params);
	bool none = true;
	Datum roots = spi::Value(0, 0, &none);
	if (!none)
		CancelTrees(roots, Now(), std::nullopt);
	drop.Run(params);
	drop_tasks.RunSeeingLatest(params); // also tasks spawned while we waited for the queue row
	PG_RETURN_VOID();
}

Datum ListQueues(FunctionCallInfo fcinfo) {
	ResultSet result(fcinfo);
	static spi::Statement list("SELECT queue, created_at, policy FROM belay.queues ORDER BY queue", {});
	spi::Connection spi;
	spi::Params params;
	result.AddAllSpiRows(list.Run(params));
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_create_queue, belay::CreateQueue)
BELAY_FUNCTION(belay_drop_queue, belay::DropQueue)
BELAY_FUNCTION(belay_list_queues, belay::ListQueues)
