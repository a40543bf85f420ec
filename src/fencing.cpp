// Why a run is not live: the slow path of every run-scoped call.
#include "belay/fencing.hpp"

#include "belay/args.hpp"
#include "belay/spi.hpp"
#include "belay/states.hpp"

namespace belay {

void ThrowNotLive(Datum run_id) {
	// Still the task's run, yet not live: its lease has expired.
	static spi::Statement live("SELECT task_id::text FROM belay.tasks "
	                           "WHERE run_id OPERATOR(pg_catalog.=) $1 AND state = 'running'",
	                           {UUIDOID});
	// Ended without completing its task: in belay.run_history. (The run that completed its
	// task stays only in the task's row, which is not indexed by a finished run's id:
	// looking for it would read the whole table, on a path any stale worker can take.)
	static spi::Statement ended("SELECT r.task_id::text, r.outcome, " BELAY_PUBLIC_STATE("t.state") " FROM belay.run_history r "
	                            " JOIN belay.tasks t ON t.task_id OPERATOR(pg_catalog.=) r.task_id "
	                            "WHERE r.run_id OPERATOR(pg_catalog.=) $1",
	                            {UUIDOID});
	std::string run = UuidToString(run_id);
	spi::Params params;
	params.Add(run_id);
	if (live.Run(params) == 1) {
		std::string task = spi::TextValue(0, 0);
		throw Error(sqlstate::kLeaseLost, "the lease of run " + run + " has expired",
		            "Task " + task + " will be claimed again.",
		            "Heartbeat more often than the lease, or claim with a longer lease_seconds.");
	}
	spi::Params by_run;
	by_run.Add(run_id);
	if (ended.Run(by_run) == 1) {
		std::string task = spi::TextValue(0, 0);
		std::string outcome = spi::TextValue(0, 1);
		if (outcome == "cancelled")
			throw Error(sqlstate::kCancelled, "task " + task + " was cancelled",
			            "Run " + run + " can make no more changes.");
		throw Error(sqlstate::kLeaseLost, "run " + run + " is no longer live",
		            "It ended as " + outcome + "; task " + task + " is " + spi::TextValue(0, 2) + ".");
	}
	throw Error(sqlstate::kLeaseLost, "run " + run + " is not a live run",
	            "No task is held by this run: it completed its task, its task was deleted (cleanup, "
	            "drop_queue), or it never existed.");
}

} // namespace belay
