// The commands of belayctl. Each checks its arguments first (UsageError, exit 2), then
// connects: changes go through belay::Client (spawn, emit_event, cancel, retry, task,
// cleanup), listings are read-only queries on client.connection().
#include "cli.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iostream>

namespace belayctl {
namespace {

const char *OrNull(const std::optional<std::string> &value) { return value ? value->c_str() : nullptr; }

std::string Plural(long n, const std::string &word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

// The public name of a state: 'scheduled' (pending, not due yet) is pending.
#define PUBLIC_STATE(column) "CASE " column " WHEN 'scheduled' THEN 'pending' ELSE " column " END"

// Listings filtered by queue name an unknown queue: not found (exit 3), not an empty list.
void RequireQueue(Invocation &inv, const std::string &queue) {
	bool exists = inv.ReadOnly([&](pqxx::read_transaction &tx) {
		return tx.exec_params1("SELECT EXISTS (SELECT 1 FROM belay.queues WHERE queue = $1)", queue)[0].as<bool>();
	});
	if (!exists)
		throw NotFound("queue \"" + queue + "\" does not exist");
}

// --- queues and per-queue counts ---------------------------------------------------------

struct QueueCounts {
	std::string queue;
	std::optional<std::string> created_at;
	Json policy;
	std::map<std::string, long> counts; // by public state
};

std::vector<QueueCounts> ReadCounts(pqxx::read_transaction &tx, const std::optional<std::string> &queue) {
	pqxx::result rows = tx.exec_params(
	    "SELECT q.queue, q.created_at, q.policy, "
	    " count(t.task_id) FILTER (WHERE t.state IN ('pending', 'scheduled')), "
	    " count(t.task_id) FILTER (WHERE t.state = 'running'), "
	    " count(t.task_id) FILTER (WHERE t.state = 'sleeping'), "
	    " count(t.task_id) FILTER (WHERE t.state = 'waiting'), "
	    " count(t.task_id) FILTER (WHERE t.state = 'completed'), "
	    " count(t.task_id) FILTER (WHERE t.state = 'failed'), "
	    " count(t.task_id) FILTER (WHERE t.state = 'cancelled') "
	    "FROM belay.queues q LEFT JOIN belay.tasks t ON t.queue = q.queue "
	    "WHERE $1::text IS NULL OR q.queue = $1 "
	    "GROUP BY q.queue ORDER BY q.queue",
	    OrNull(queue));
	std::vector<QueueCounts> out;
	for (const auto &row : rows) {
		QueueCounts counts;
		counts.queue = row[0].c_str();
		counts.created_at = OptText(row[1]);
		counts.policy = JsonField(row[2]);
		for (size_t i = 0; i < PublicStates().size(); ++i)
			counts.counts[PublicStates()[i]] = row[3 + static_cast<int>(i)].as<long>();
		out.push_back(std::move(counts));
	}
	return out;
}

Doc CountsJson(const std::map<std::string, long> &counts) {
	Doc out = Doc::object();
	for (const std::string &state : PublicStates()) {
		auto it = counts.find(state);
		out[state] = it == counts.end() ? 0 : it->second;
	}
	return out;
}

std::vector<std::string> StateHeaders() {
	std::vector<std::string> headers;
	for (const std::string &state : PublicStates()) {
		std::string upper;
		for (char ch : state)
			upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
		headers.push_back(upper);
	}
	return headers;
}

int Queues(Invocation &inv) {
	std::vector<QueueCounts> queues =
	    inv.ReadOnly([&](pqxx::read_transaction &tx) { return ReadCounts(tx, std::nullopt); });
	if (inv.json) {
		Doc out = Doc::array();
		for (const QueueCounts &queue : queues) {
			Doc item = {{"queue", queue.queue}, {"created_at", TimeJson(queue.created_at)}, {"policy", Doc(queue.policy)}};
			item.update(CountsJson(queue.counts));
			out.push_back(item);
		}
		PrintJson(out);
		return kExitOk;
	}
	if (queues.empty()) {
		std::cout << "no queues (create one with SELECT belay.create_queue('name'))\n";
		return kExitOk;
	}
	std::vector<std::string> headers = {"QUEUE"};
	for (const std::string &header : StateHeaders())
		headers.push_back(header);
	Table table(headers);
	table.RightAlign({1, 2, 3, 4, 5, 6, 7});
	for (const QueueCounts &queue : queues) {
		std::vector<std::string> cells = {Cell(queue.queue)};
		for (const std::string &state : PublicStates())
			cells.push_back(std::to_string(queue.counts.at(state)));
		table.Add(cells);
	}
	std::cout << table.Render();
	return kExitOk;
}

// --- tasks --------------------------------------------------------------------------------

int Tasks(Invocation &inv) {
	std::optional<std::string> queue = inv.Option("--queue");
	std::optional<std::string> state;
	if (auto text = inv.Option("--state"))
		state = CheckState(*text);
	long limit = 50;
	if (auto text = inv.Option("--limit"))
		limit = ParseCount("--limit", *text, 1, 1000000);

	if (queue)
		RequireQueue(inv, *queue);
	pqxx::result rows = inv.ReadOnly([&](pqxx::read_transaction &tx) {
		return tx.exec_params("SELECT task_id, queue, task_name, " PUBLIC_STATE("state") ", attempt, max_attempts, "
		                      " priority, created_at, available_at, finished_at "
		                      "FROM belay.tasks "
		                      "WHERE ($1::text IS NULL OR queue = $1) "
		                      "  AND ($2::text IS NULL OR state = $2 OR ($2 = 'pending' AND state = 'scheduled')) "
		                      "ORDER BY created_at DESC, task_id DESC LIMIT $3",
		                      OrNull(queue), OrNull(state), limit);
	});

	if (inv.json) {
		Doc out = Doc::array();
		for (const auto &row : rows)
			out.push_back({{"task_id", row[0].c_str()},
			               {"queue", row[1].c_str()},
			               {"task_name", row[2].c_str()},
			               {"state", row[3].c_str()},
			               {"attempt", row[4].as<int>()},
			               {"max_attempts", row[5].as<int>()},
			               {"priority", row[6].as<int>()},
			               {"created_at", TimeJson(OptText(row[7]))},
			               {"available_at", TimeJson(OptText(row[8]))},
			               {"finished_at", TimeJson(OptText(row[9]))}});
		PrintJson(out);
		return kExitOk;
	}
	if (rows.empty()) {
		std::cout << "no tasks\n";
		return kExitOk;
	}
	Table table({"ID", "QUEUE", "NAME", "STATE", "ATTEMPT", "CREATED", "FINISHED"});
	table.RightAlign({4});
	for (const auto &row : rows)
		table.Add({row[0].c_str(), Cell(row[1].c_str()), Cell(row[2].c_str()), row[3].c_str(),
		           std::string(row[4].c_str()) + "/" + row[5].c_str(), TableTime(OptText(row[7])),
		           TableTime(OptText(row[9]))});
	std::cout << table.Render();
	return kExitOk;
}

// --- task <id> ----------------------------------------------------------------------------

struct TaskDetail {
	pqxx::result extra;       // priority, headers, idempotency_key, live run, first start
	pqxx::result wait;        // what a waiting task waits for
	pqxx::result runs;        // ended runs
	pqxx::result checkpoints; // finished steps
	pqxx::result children;    // spawned children
};

int Task(Invocation &inv) {
	std::string id = CheckTaskId(inv.args[0]);
	std::optional<belay::TaskInfo> found = inv.client().task(id);
	if (!found)
		throw NotFound("task " + id + " does not exist");
	const belay::TaskInfo &task = *found;

	TaskDetail detail = inv.ReadOnly([&](pqxx::read_transaction &tx) {
		TaskDetail d;
		d.extra = tx.exec_params(
		    "SELECT priority, headers, idempotency_key, run_id, worker, run_started_at, lease_expires_at, "
		    " first_started_at, extract(epoch FROM lease_expires_at - now())::float8 "
		    "FROM belay.tasks WHERE task_id = $1::uuid",
		    task.task_id);
		d.wait = tx.exec_params("SELECT step, queue, event, child_task_id, deadline FROM belay.waits "
		                        "WHERE task_id = $1::uuid",
		                        task.task_id);
		d.runs = tx.exec_params("SELECT run_id, attempt, worker, started_at, ended_at, outcome, error "
		                        "FROM belay.runs WHERE task_id = $1::uuid ORDER BY started_at, run_id",
		                        task.task_id);
		d.checkpoints = tx.exec_params("SELECT step, value, updated_at FROM belay.checkpoints($1::uuid) "
		                               "ORDER BY updated_at, step",
		                               task.task_id);
		d.children = tx.exec_params("SELECT task_id, queue, task_name, " PUBLIC_STATE("state") ", attempt, "
		                            " max_attempts, created_at, finished_at "
		                            "FROM belay.tasks WHERE parent_task_id = $1::uuid ORDER BY created_at, task_id",
		                            task.task_id);
		return d;
	});

	bool has_extra = !detail.extra.empty(); // gone if it was cleaned up in between
	bool live = has_extra && task.state == "running" && !detail.extra[0][3].is_null();
	auto extra = [&](int column) -> std::optional<std::string> {
		if (!has_extra)
			return std::nullopt;
		return OptText(detail.extra[0][column]);
	};

	if (inv.json) {
		Doc out = {{"task_id", task.task_id},
		            {"queue", task.queue},
		            {"task_name", task.task_name},
		            {"state", task.state},
		            {"attempt", task.attempt},
		            {"max_attempts", task.max_attempts},
		            {"params", Doc(task.params)},
		            {"result", Doc(task.result)},
		            {"error", Doc(task.error)},
		            {"parent_task_id", task.parent_task_id ? Doc(*task.parent_task_id) : Doc()},
		            {"created_at", TimeJson(task.created_at)},
		            {"available_at", TimeJson(task.available_at)},
		            {"finished_at", TimeJson(task.finished_at)}};
		out["priority"] = has_extra ? Doc(detail.extra[0][0].as<int>()) : Doc();
		out["headers"] = has_extra ? Doc(JsonField(detail.extra[0][1])) : Doc();
		out["idempotency_key"] = extra(2) ? Doc(*extra(2)) : Doc();
		out["first_started_at"] = TimeJson(extra(7));
		out["live_run"] = live ? Doc{{"run_id", *extra(3)},
		                              {"worker", extra(4) ? Doc(*extra(4)) : Doc()},
		                              {"started_at", TimeJson(extra(5))},
		                              {"lease_expires_at", TimeJson(extra(6))}}
		                       : Doc();
		if (!detail.wait.empty()) {
			const auto &w = detail.wait[0];
			out["wait"] = {{"step", w[0].c_str()},
			               {"event", w[2].is_null() ? Doc() : Doc(w[2].c_str())},
			               {"child_task_id", w[3].is_null() ? Doc() : Doc(w[3].c_str())},
			               {"deadline", TimeJson(OptText(w[4]))}};
		} else {
			out["wait"] = nullptr;
		}
		Doc runs = Doc::array();
		for (const auto &r : detail.runs)
			runs.push_back({{"run_id", r[0].c_str()},
			                {"attempt", r[1].as<int>()},
			                {"worker", r[2].c_str()},
			                {"started_at", TimeJson(OptText(r[3]))},
			                {"ended_at", TimeJson(OptText(r[4]))},
			                {"outcome", r[5].c_str()},
			                {"error", Doc(JsonField(r[6]))}});
		out["runs"] = runs;
		Doc checkpoints = Doc::array();
		for (const auto &c : detail.checkpoints)
			checkpoints.push_back(
			    {{"step", c[0].c_str()}, {"value", Doc(JsonField(c[1]))}, {"updated_at", TimeJson(OptText(c[2]))}});
		out["checkpoints"] = checkpoints;
		Doc children = Doc::array();
		for (const auto &c : detail.children)
			children.push_back({{"task_id", c[0].c_str()},
			                    {"queue", c[1].c_str()},
			                    {"task_name", c[2].c_str()},
			                    {"state", c[3].c_str()},
			                    {"attempt", c[4].as<int>()},
			                    {"max_attempts", c[5].as<int>()},
			                    {"created_at", TimeJson(OptText(c[6]))},
			                    {"finished_at", TimeJson(OptText(c[7]))}});
		out["children"] = children;
		PrintJson(out);
		return kExitOk;
	}

	std::vector<std::pair<std::string, std::string>> fields = {
	    {"task_id", task.task_id},
	    {"queue", Cell(task.queue)},
	    {"task_name", Cell(task.task_name)},
	    {"state", task.state},
	    {"attempt", std::to_string(task.attempt) + " of " + std::to_string(task.max_attempts)},
	};
	if (has_extra) {
		fields.emplace_back("priority", detail.extra[0][0].c_str());
		if (extra(2))
			fields.emplace_back("idempotency_key", Cell(*extra(2)));
	}
	fields.emplace_back("params", CellJson(task.params));
	if (has_extra)
		fields.emplace_back("headers", CellJson(JsonField(detail.extra[0][1])));
	fields.emplace_back("result", CellJson(task.result));
	fields.emplace_back("error", CellJson(task.error));
	fields.emplace_back("parent_task_id", task.parent_task_id.value_or("-"));
	fields.emplace_back("created_at", TableTime(task.created_at));
	fields.emplace_back("available_at", TableTime(task.available_at));
	fields.emplace_back("first_started_at", TableTime(extra(7)));
	fields.emplace_back("finished_at", TableTime(task.finished_at));
	std::cout << RenderFields(fields);

	if (live) {
		std::string expiry = TableTime(extra(6));
		if (!detail.extra[0][8].is_null()) {
			double left = detail.extra[0][8].as<double>();
			expiry += left >= 0 ? " (in " + HumanSeconds(left) + ")" : " (expired " + HumanSeconds(-left) + " ago)";
		}
		std::cout << "\nlive run\n"
		          << RenderFields({{"run_id", *extra(3)},
		                           {"worker", Cell(extra(4).value_or("-"))},
		                           {"started_at", TableTime(extra(5))},
		                           {"lease_expires_at", expiry}},
		                          "  ");
	}
	if (!detail.wait.empty()) {
		const auto &w = detail.wait[0];
		std::string what = w[2].is_null() ? "child task " + std::string(w[3].c_str())
		                                  : "event \"" + Cell(w[2].c_str()) + "\" in queue " + Cell(w[1].c_str());
		std::cout << "\nwaiting for\n"
		          << RenderFields({{"step", Cell(w[0].c_str())}, {"for", what}, {"deadline", TableTime(OptText(w[4]))}},
		                          "  ");
	}

	std::cout << "\nruns (" << detail.runs.size() << ")\n";
	if (!detail.runs.empty()) {
		Table runs({"ATTEMPT", "WORKER", "STARTED", "ENDED", "OUTCOME", "ERROR"});
		runs.RightAlign({0});
		for (const auto &r : detail.runs)
			runs.Add({r[1].c_str(), Cell(r[2].c_str()), TableTime(OptText(r[3])), TableTime(OptText(r[4])),
			          r[5].c_str(), CellJson(JsonField(r[6]), 80)});
		std::cout << runs.Render("  ");
	}
	std::cout << "\ncheckpoints (" << detail.checkpoints.size() << ")\n";
	if (!detail.checkpoints.empty()) {
		Table checkpoints({"STEP", "UPDATED", "VALUE"});
		for (const auto &c : detail.checkpoints)
			checkpoints.Add({Cell(c[0].c_str()), TableTime(OptText(c[2])), CellJson(JsonField(c[1]), 100)});
		std::cout << checkpoints.Render("  ");
	}
	if (!detail.children.empty()) {
		std::cout << "\nchildren (" << detail.children.size() << ")\n";
		Table children({"ID", "QUEUE", "NAME", "STATE", "ATTEMPT", "CREATED", "FINISHED"});
		children.RightAlign({4});
		for (const auto &c : detail.children)
			children.Add({c[0].c_str(), Cell(c[1].c_str()), Cell(c[2].c_str()), c[3].c_str(),
			              std::string(c[4].c_str()) + "/" + c[5].c_str(), TableTime(OptText(c[6])),
			              TableTime(OptText(c[7]))});
		std::cout << children.Render("  ");
	}
	return kExitOk;
}

// --- spawn, emit --------------------------------------------------------------------------

int Spawn(Invocation &inv) {
	const std::string &queue = inv.args[0];
	const std::string &task_name = inv.args[1];
	Json params = Json::object();
	if (auto text = inv.Option("--params"))
		params = ParseJsonArgument("--params", *text);
	Json options = Json::object();
	if (auto text = inv.Option("--options")) {
		options = ParseJsonArgument("--options", *text);
		if (!options.is_object())
			throw UsageError("--options must be a JSON object, such as '{\"max_attempts\": 3, \"delay_seconds\": 60}'");
	}

	belay::Client &client = inv.client();
	belay::Spawned spawned;
	if (std::optional<belay::SpawnOptions> exact = ExactSpawnOptions(options)) {
		spawned = client.spawn(queue, task_name, params, *exact);
	} else {
		// Options SpawnOptions cannot carry as given (run_at, a partial retry object, or keys
		// belay should judge): pass the object through untouched.
		spawned = belay::Translate([&] {
			pqxx::work tx(client.connection());
			pqxx::row row = tx.exec_params1("SELECT task_id, created FROM belay.spawn($1, $2, $3::jsonb, $4::jsonb)",
			                                queue, task_name, params.dump(), options.dump());
			belay::Spawned out{row[0].c_str(), row[1].as<bool>()};
			tx.commit();
			return out;
		});
	}

	if (inv.json) {
		PrintJson({{"task_id", spawned.task_id}, {"created", spawned.created}, {"queue", queue}, {"task_name", task_name}});
	} else if (spawned.created) {
		std::cout << spawned.task_id << " created\n";
	} else {
		std::cout << spawned.task_id << " exists (same idempotency key); nothing changed\n";
	}
	return kExitOk;
}

int Emit(Invocation &inv) {
	const std::string &queue = inv.args[0];
	const std::string &event = inv.args[1];
	Doc payload;
	if (auto text = inv.Option("--payload"))
		payload = ParseJsonArgument("--payload", *text);

	int woken = inv.client().emit_event(queue, event, payload);
	if (inv.json)
		PrintJson({{"queue", queue}, {"event", event}, {"woken", woken}});
	else
		std::cout << "emitted \"" << Cell(event) << "\" in queue " << Cell(queue) << "; woke " << Plural(woken, "task")
		          << "\n";
	return kExitOk;
}

// --- cancel, retry ------------------------------------------------------------------------

// The task, or NotFound.
belay::TaskInfo MustFind(Invocation &inv, const std::string &id) {
	std::optional<belay::TaskInfo> task = inv.client().task(id);
	if (!task)
		throw NotFound("task " + id + " does not exist");
	return *task;
}

int Cancel(Invocation &inv) {
	std::string id = CheckTaskId(inv.args[0]);
	belay::TaskInfo before = MustFind(inv, id);
	int cancelled = 0;
	try {
		cancelled = inv.client().cancel(id);
	} catch (const belay::InvalidArgument &) {
		if (!inv.client().task(id)) // deleted in between
			throw NotFound("task " + id + " does not exist");
		throw;
	}
	std::optional<belay::TaskInfo> after = inv.client().task(id);
	std::string state = after ? after->state : before.state;

	if (inv.json) {
		PrintJson({{"task_id", before.task_id},
		           {"cancelled", cancelled},
		           {"previous_state", before.state},
		           {"state", state}});
	} else if (cancelled == 0) {
		std::cout << "nothing to cancel: task " << before.task_id << " is already " << state << "\n";
	} else if (before.terminal()) {
		std::cout << "cancelled " << Plural(cancelled, "unfinished descendant") << " of task " << before.task_id
		          << " (which is " << state << ")\n";
	} else if (cancelled == 1) {
		std::cout << "cancelled task " << before.task_id << " (was " << before.state << ")\n";
	} else {
		std::cout << "cancelled " << cancelled << " tasks: task " << before.task_id << " (was " << before.state
		          << ") and " << Plural(cancelled - 1, "unfinished descendant") << "\n";
	}
	return kExitOk;
}

int Retry(Invocation &inv) {
	std::string id = CheckTaskId(inv.args[0]);
	belay::TaskInfo before = MustFind(inv, id);
	try {
		inv.client().retry(id);
	} catch (const belay::InvalidArgument &) {
		if (!inv.client().task(id))
			throw NotFound("task " + id + " does not exist");
		throw;
	}
	belay::TaskInfo after = inv.client().task(id).value_or(before);

	if (inv.json)
		PrintJson({{"task_id", after.task_id},
		           {"previous_state", before.state},
		           {"state", after.state},
		           {"attempt", after.attempt},
		           {"max_attempts", after.max_attempts}});
	else
		std::cout << "task " << after.task_id << " is " << after.state << " again (was " << before.state
		          << "): attempt " << after.attempt << " of " << after.max_attempts << "\n";
	return kExitOk;
}

// --- cleanup ------------------------------------------------------------------------------

int Cleanup(Invocation &inv) {
	std::optional<std::string> queue = inv.Option("--queue");
	long older_than = 604800;
	if (auto text = inv.Option("--older-than"))
		older_than = ParseSeconds("--older-than", *text, 0);

	long deleted = inv.client().cleanup(queue, std::chrono::seconds(older_than));
	if (inv.json)
		PrintJson({{"deleted", deleted},
		           {"queue", queue ? Doc(*queue) : Doc()},
		           {"older_than_seconds", older_than}});
	else
		std::cout << "deleted " << Plural(deleted, "finished task") << " (finished more than "
		          << HumanDuration(older_than) << " ago, "
		          << (queue ? "queue " + Cell(*queue) : std::string("all queues")) << ")\n";
	return kExitOk;
}

// --- stats --------------------------------------------------------------------------------

struct QueueStats {
	std::string queue;
	long completed = 0;
	long failed = 0;
	double lag = 0; // seconds
	std::optional<std::string> oldest;
	std::map<std::string, long> counts;
};

Doc StatsJson(const QueueStats &stats, long window) {
	return {{"completed", stats.completed},
	        {"failed", stats.failed},
	        {"completed_per_second", static_cast<double>(stats.completed) / static_cast<double>(window)},
	        {"failed_per_second", static_cast<double>(stats.failed) / static_cast<double>(window)},
	        {"lag_seconds", stats.lag},
	        {"oldest_claimable_at", TimeJson(stats.oldest)},
	        {"counts", CountsJson(stats.counts)}};
}

int Stats(Invocation &inv) {
	std::optional<std::string> queue = inv.Option("--queue");
	long window = 300;
	if (auto text = inv.Option("--window"))
		window = ParseSeconds("--window", *text, 1);

	if (queue)
		RequireQueue(inv, *queue);
	struct Read {
		std::vector<QueueCounts> counts;
		pqxx::result runs, lag;
		std::string now;
	};
	Read read = inv.ReadOnly([&](pqxx::read_transaction &tx) {
		Read r;
		r.counts = ReadCounts(tx, queue);
		// Throughput: runs that ended in the window. A lost lease is a failed run too.
		r.runs = tx.exec_params(
		    "SELECT t.queue, count(*) FILTER (WHERE r.outcome = 'completed'), "
		    " count(*) FILTER (WHERE r.outcome IN ('failed', 'lease_expired')) "
		    "FROM belay.runs r JOIN belay.tasks t ON t.task_id = r.task_id "
		    "WHERE r.ended_at > now() - make_interval(secs => $2::float8) AND ($1::text IS NULL OR t.queue = $1) "
		    "GROUP BY t.queue",
		    OrNull(queue), window);
		// Lag: the oldest task that is claimable now (pending, or delayed/sleeping and due).
		r.lag = tx.exec_params("SELECT queue, min(available_at), extract(epoch FROM now() - min(available_at))::float8 "
		                       "FROM belay.tasks "
		                       "WHERE state IN ('pending', 'scheduled', 'sleeping') AND available_at <= now() "
		                       "  AND ($1::text IS NULL OR queue = $1) "
		                       "GROUP BY queue",
		                       OrNull(queue));
		r.now = tx.exec("SELECT now()")[0][0].c_str();
		return r;
	});

	std::vector<QueueStats> stats;
	std::map<std::string, size_t> index;
	for (const QueueCounts &counts : read.counts) {
		index[counts.queue] = stats.size();
		stats.push_back(QueueStats{counts.queue, 0, 0, 0, std::nullopt, counts.counts});
	}
	for (const auto &row : read.runs) {
		auto it = index.find(row[0].c_str());
		if (it == index.end())
			continue;
		stats[it->second].completed = row[1].as<long>();
		stats[it->second].failed = row[2].as<long>();
	}
	for (const auto &row : read.lag) {
		auto it = index.find(row[0].c_str());
		if (it == index.end())
			continue;
		stats[it->second].oldest = OptText(row[1]);
		stats[it->second].lag = std::max(0.0, row[2].as<double>());
	}
	QueueStats total;
	total.queue = queue.value_or("(all)");
	for (const std::string &state : PublicStates())
		total.counts[state] = 0;
	for (const QueueStats &s : stats) {
		total.completed += s.completed;
		total.failed += s.failed;
		if (s.oldest && (!total.oldest || s.lag > total.lag)) {
			total.lag = s.lag;
			total.oldest = s.oldest;
		}
		for (const auto &[state, n] : s.counts)
			total.counts[state] += n;
	}

	if (inv.json) {
		Doc out = {{"queue", queue ? Doc(*queue) : Doc()}, {"window_seconds", window}, {"at", IsoTime(read.now)}};
		out.update(StatsJson(total, window));
		Doc per_queue = Doc::array();
		for (const QueueStats &s : stats) {
			Doc item = {{"queue", s.queue}};
			item.update(StatsJson(s, window));
			per_queue.push_back(item);
		}
		out["queues"] = per_queue;
		PrintJson(out);
		return kExitOk;
	}

	std::cout << "throughput over the last " << HumanDuration(window)
	          << " (runs ended per second; failed includes lost leases); lag = age of the oldest claimable task\n\n";
	std::vector<std::string> headers = {"QUEUE", "COMPLETED/S", "FAILED/S", "LAG"};
	for (const std::string &header : StateHeaders())
		headers.push_back(header);
	Table table(headers);
	table.RightAlign({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
	auto add = [&](const QueueStats &s) {
		std::vector<std::string> cells = {
		    Cell(s.queue), Rate(static_cast<double>(s.completed) / static_cast<double>(window)),
		    Rate(static_cast<double>(s.failed) / static_cast<double>(window)), s.oldest ? HumanSeconds(s.lag) : "-"};
		for (const std::string &state : PublicStates())
			cells.push_back(std::to_string(s.counts.count(state) ? s.counts.at(state) : 0));
		table.Add(cells);
	};
	for (const QueueStats &s : stats)
		add(s);
	if (!queue && stats.size() != 1)
		add(total);
	std::cout << table.Render();
	return kExitOk;
}

} // namespace

const std::vector<CommandSpec> &Commands() {
	static const std::vector<CommandSpec> commands = {
	    {"queues", "", 0, 0, {}, "list the queues with their tasks' counts by state",
	     "Counts are by public state: pending includes delayed tasks and tasks backing off\n"
	     "before a retry (belay's internal 'scheduled').\n",
	     Queues},
	    {"tasks",
	     "",
	     0,
	     0,
	     {{"--queue", "Q", "only the tasks of queue Q (exit 3 if there is no such queue)"},
	      {"--state", "S", "only tasks in state S: pending, running, sleeping, waiting, completed, failed, cancelled"},
	      {"--limit", "N", "at most N tasks (default 50)"}},
	     "list tasks, newest first",
	     "Shows id, queue, name, state, attempt/max attempts, created and finished times.\n",
	     Tasks},
	    {"task", "<id>", 1, 1, {}, "show one task: its fields, live run, runs, checkpoints and children",
	     "Exit 3 if there is no such task.\n", Task},
	    {"spawn",
	     "<queue> <task_name>",
	     2,
	     2,
	     {{"--params", "JSON", "the task's params (default {})"},
	      {"--options", "JSON",
	       "spawn options: max_attempts, retry, priority, run_at, delay_seconds, idempotency_key, headers, "
	       "cancellation"}},
	     "enqueue a task; prints its id and whether it was created",
	     "A repeat spawn with the same idempotency_key prints the existing task (created: false).\n"
	     "Example: belayctl spawn emails send --params '{\"to\": \"a@b.c\"}' --options '{\"delay_seconds\": 60}'\n",
	     Spawn},
	    {"emit", "<queue> <event>", 2, 2, {{"--payload", "JSON", "the event's payload (default null)"}},
	     "emit an event; prints how many waiting tasks it woke", "", Emit},
	    {"cancel", "<id>", 1, 1, {}, "cancel a task and its unfinished descendants",
	     "Terminal tasks are left alone. Exit 3 if there is no such task.\n", Cancel},
	    {"retry", "<id>", 1, 1, {}, "put a failed or cancelled task back to pending, with one more attempt",
	     "Exit 3 if there is no such task; exit 1 if it is not failed or cancelled.\n", Retry},
	    {"cleanup",
	     "",
	     0,
	     0,
	     {{"--queue", "Q", "only queue Q (default: all queues)"},
	      {"--older-than", "SECONDS", "delete tasks finished more than this long ago (default 604800 = 7 days; "
	                                  "units allowed: 90s, 15m, 12h, 7d)"}},
	     "delete finished tasks (completed, failed, cancelled) with their runs and checkpoints",
	     "",
	     Cleanup},
	    {"stats",
	     "",
	     0,
	     0,
	     {{"--queue", "Q", "only queue Q (exit 3 if there is no such queue)"},
	      {"--window", "SECONDS", "the throughput window (default 300; units allowed: 90s, 15m, 12h, 7d)"}},
	     "throughput, lag and counts by state",
	     "Throughput: runs completed and failed per second over the window (by belay.runs.ended_at;\n"
	     "failed includes runs that lost their lease). Lag: the age of the oldest task that is claimable\n"
	     "now (pending, or delayed/sleeping and due), 0 when there is none.\n",
	     Stats},
	    {"help", "[<command>]", 0, 1, {}, "show help, for belayctl or for one command", "", nullptr},
	};
	return commands;
}

} // namespace belayctl
