// claim: hand out claimable tasks to a worker, each under a new run and lease.
#include "belay/args.hpp"
#include "belay/queues.hpp"
#include "belay/result_set.hpp"
#include "belay/spi.hpp"
#include "belay/validation.hpp"
#include "belay/worker.hpp"

namespace belay {
namespace {

Datum Claim(FunctionCallInfo fcinfo) {
	Arguments args(fcinfo);
	std::string queue = args.Text(0, "queue");
	CheckQueueName(queue);
	std::string worker = args.Text(1, "worker");
	CheckName(worker, "worker");
	int qty = args.Int4(2, "qty");
	CheckQty(qty);
	double lease_seconds = args.Number(3, "lease_seconds");
	CheckLeaseSeconds(lease_seconds);
	TimestampTz now = Now();

	// Delayed and sleeping tasks that have fallen due become pending here when no
	// background worker serves this database (it does so within milliseconds of the due
	// time, and this probe is a statement per claim). All of them (up to a bound),
	// not just qty: the claim below must choose among every due task by priority. When
	// none is due this is a single probe into tasks_due_idx.
	static spi::Statement promote(
	    "UPDATE belay.tasks t SET state = 'pending' "
	    "FROM (SELECT task_id FROM belay.tasks "
	    "      WHERE queue OPERATOR(pg_catalog.=) $1 AND state IN ('scheduled', 'sleeping') "
	    "        AND available_at OPERATOR(pg_catalog.<=) $2 "
	    "      ORDER BY available_at LIMIT 1000 FOR UPDATE SKIP LOCKED) due "
	    "WHERE t.task_id OPERATOR(pg_catalog.=) due.task_id",
	    {TEXTOID, TIMESTAMPTZOID});

	// The claim itself reads tasks_claim_idx in order and skips rows other claimers hold,
	// so claimers never block each other and never get the same task.
	//
	// Two copies that differ only in the LIMIT: planned generically, "LIMIT $3" is costed
	// as a tenth of the queue, so PostgreSQL's plan cache would re-plan the statement on
	// every call. The one-task claim, the common case of a worker with one free slot, says
	// LIMIT 1 and keeps its cached plan; a batch claim amortizes its planning.
#define BELAY_CLAIM_SQL(LIMIT) \
	"WITH picked AS (" \
	" SELECT task_id, first_started_at FROM belay.tasks" \
	" WHERE queue OPERATOR(pg_catalog.=) $1 AND state = 'pending'" \
	/* Past its cancellation deadline: the worker is about to cancel it. */ \
	"   AND (cancel_at IS NULL OR cancel_at OPERATOR(pg_catalog.>) $2)" \
	" ORDER BY priority DESC, available_at, task_id" \
	" LIMIT " LIMIT " FOR UPDATE SKIP LOCKED), " \
	"claimed AS (" \
	"UPDATE belay.tasks t SET state = 'running', run_id = belay.uuidv7(), worker = $4, " \
	" run_started_at = $2, lease_seconds = $5, " \
	" lease_expires_at = $2 OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $5), " \
	" first_started_at = coalesce(t.first_started_at, $2), " \
	/* From the first start on, the cancellation deadline is max_duration_seconds. */ \
	" cancel_at = CASE WHEN t.first_started_at IS NULL " \
	"  THEN $2 OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => t.max_duration_seconds) " \
	"  ELSE t.cancel_at END " \
	"FROM picked WHERE t.task_id OPERATOR(pg_catalog.=) picked.task_id " \
	"RETURNING t.priority, t.available_at, t.run_id, t.task_id, t.task_name, t.params, t.headers, t.attempt," \
	" t.lease_expires_at, " \
	/* A task's first claim has no steps yet: skip the lookup. */ \
	" CASE WHEN picked.first_started_at IS NULL THEN '{}'::jsonb ELSE" \
	"  coalesce((SELECT pg_catalog.jsonb_object_agg(c.step, c.value) FROM belay.checkpoints c " \
	"            WHERE c.task_id OPERATOR(pg_catalog.=) t.task_id), '{}'::jsonb) END AS checkpoints) " \
	/* Handed out in claim order: highest priority first, then the oldest. */ \
	"SELECT run_id, task_id, task_name, params, headers, attempt, lease_expires_at, checkpoints FROM claimed " \
	"ORDER BY priority DESC, available_at, task_id"
	// Both take the same Params; claim_one leaves $3 (qty, which is 1) unused.
	static spi::Statement claim_one(BELAY_CLAIM_SQL("1"),
	                                {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, FLOAT8OID});
	static spi::Statement claim_many(BELAY_CLAIM_SQL("$3"), {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID, FLOAT8OID});
#undef BELAY_CLAIM_SQL

	ResultSet result(fcinfo);
	spi::Connection spi;
	if (!WorkerServesThisDatabase()) {
		spi::Params promote_params;
		promote_params.Text(queue).Timestamptz(now);
		promote.Run(promote_params);
	}

	spi::Params params;
	params.Text(queue).Timestamptz(now).Int4(qty).Text(worker).Float8(lease_seconds);
	uint64 claimed = (qty == 1 ? claim_one : claim_many).Run(params);
	result.AddAllSpiRows(claimed);
	if (claimed == 0)
		RequireQueue(queue); // only on the empty path: an unknown queue is an error, not "no work"
	else
		WakeWorkerBy(now + static_cast<TimestampTz>(lease_seconds * USECS_PER_SEC)); // lease expiry
	return Datum(0);
}

} // namespace
} // namespace belay

BELAY_FUNCTION(belay_claim, belay::Claim)
