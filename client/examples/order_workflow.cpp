// belay demo: an order workflow run by C++ workers, one of which is killed midway.
//
//   order_workflow demo            run the whole demo (spawns and kills worker processes)
//   order_workflow worker NAME     run one worker process (used by the demo)
//
// The workflow: reserve stock, charge the card (the gateway times out on the first
// attempt, so the task is retried), a cool-off sleep, an approval event that the demo
// emits, one child task per item (fanned out, then joined), and a confirmation email.
// Side effects are counted in demo_effects, so the summary can show that finished steps
// were not redone after the crash.
#include <belay/client.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Elapsed() {
	static const double start = std::stod(getenv("DEMO_T0") ? getenv("DEMO_T0") : "0");
	double now = std::chrono::duration<double>(Steady::now().time_since_epoch()).count();
	return now - start;
}

void Say(const std::string &who, const std::string &what) {
	char line[512];
	std::snprintf(line, sizeof line, "[%6.2fs] %-10s %s\n", Elapsed(), who.c_str(), what.c_str());
	std::fputs(line, stdout);
	std::fflush(stdout);
}

// One side-effect connection per handler thread.
void RecordEffect(const std::string &task_id, const std::string &effect) {
	thread_local pqxx::connection connection{belay::DefaultConnectionString()};
	pqxx::work tx(connection);
	tx.exec_params("INSERT INTO demo_effects (task_id, effect) VALUES ($1::uuid, $2)", task_id, effect);
	tx.commit();
}

struct GatewayTimeout : std::runtime_error {
	using std::runtime_error::runtime_error;
};

int RunWorker(const std::string &name) {
	belay::WorkerOptions options;
	options.queue = "orders";
	options.worker_id = "worker-" + name;
	options.concurrency = 4;
	options.lease_seconds = 3; // short, so a killed worker's tasks come back quickly
	options.poll_interval = 500ms;
	belay::Worker worker(options);
	std::string who = options.worker_id;

	worker.handle("process-order", [who](belay::TaskContext &ctx) -> belay::Json {
		const belay::Json &order = ctx.params();
		std::string id = "order " + std::to_string(order["order"].get<int>());
		Say(who, id + ": attempt " + std::to_string(ctx.attempt()) + " starts");
		ctx.step("reserve-stock", [&] {
			RecordEffect(ctx.task_id(), "reserve-stock");
			Say(who, id + ": reserved stock (side effect)");
			return true;
		});
		std::string receipt = ctx.step("charge-card", [&]() -> std::string {
			if (ctx.attempt() == 1) {
				Say(who, id + ": card gateway timed out -> the attempt fails");
				throw GatewayTimeout("card gateway did not answer in 2 s");
			}
			RecordEffect(ctx.task_id(), "charge-card");
			Say(who, id + ": charged the card (side effect)");
			return "receipt-7731";
		});
		Say(who, id + ": cool-off sleep of 1 s (the run is suspended)");
		ctx.sleep_for("cool-off", 1s);
		Say(who, id + ": awake; waiting for the approval event");
		belay::EventResult approval = ctx.await_event("approval", "order-1001-approved", 30s);
		if (approval.timed_out)
			throw std::runtime_error("no approval within 30 s");
		Say(who, id + ": approved by " + approval.payload["by"].get<std::string>());
		std::vector<std::string> children;
		for (const auto &item : order["items"])
			children.push_back(ctx.spawn_child("pack-" + item.get<std::string>(), "pack-item", {{"item", item}}));
		Say(who, id + ": fanned out " + std::to_string(children.size()) + " pack-item children; joining");
		belay::Json packed = belay::Json::array();
		for (size_t i = 0; i < children.size(); ++i) {
			belay::JoinResult done = ctx.join("joined-" + std::to_string(i), children[i], 60s);
			if (done.state != "completed")
				throw std::runtime_error("child " + children[i] + " ended " + done.state);
			packed.push_back(done.result["packed"]);
		}
		ctx.step("send-confirmation", [&] {
			RecordEffect(ctx.task_id(), "send-confirmation");
			Say(who, id + ": sent the confirmation email (side effect)");
			return true;
		});
		return {{"status", "shipped"}, {"receipt", receipt}, {"packed", packed}};
	});

	worker.handle("pack-item", [who](belay::TaskContext &ctx) -> belay::Json {
		std::string item = ctx.params()["item"];
		ctx.step("pick", [&] {
			RecordEffect(ctx.task_id(), "pick " + item);
			Say(who, "pack " + item + ": picked from the shelf (side effect)");
			return true;
		});
		Say(who, "pack " + item + ": boxing (2 s of work)");
		std::this_thread::sleep_for(2s);
		ctx.step("box", [&] {
			RecordEffect(ctx.task_id(), "box " + item);
			return true;
		});
		Say(who, "pack " + item + ": done");
		return {{"packed", item}};
	});

	Say(who, "started (pid " + std::to_string(getpid()) + ")");
	worker.run();
	Say(who, "stopped");
	return 0;
}

pid_t StartWorker(const char *self, const std::string &name) {
	pid_t pid = fork();
	if (pid == 0) {
		execl(self, self, "worker", name.c_str(), static_cast<char *>(nullptr));
		_exit(127);
	}
	return pid;
}

int RunDemo(const char *self) {
	char t0[64];
	std::snprintf(t0, sizeof t0, "%.6f", std::chrono::duration<double>(Steady::now().time_since_epoch()).count());
	setenv("DEMO_T0", t0, 1);
	belay::Client client;
	{
		pqxx::work tx(client.connection());
		tx.exec("DROP TABLE IF EXISTS demo_effects");
		tx.exec("CREATE TABLE demo_effects (task_id uuid, effect text, at timestamptz DEFAULT clock_timestamp())");
		tx.commit();
	}
	client.create_queue("orders", {{"max_attempts", 3}, {"retry", {{"kind", "fixed"}, {"base_seconds", 0.5}}}});
	belay::SpawnOptions idempotent;
	idempotent.idempotency_key = "order-1001";
	belay::Spawned order =
	    client.spawn("orders", "process-order", {{"order", 1001}, {"items", {"kettle", "mugs"}}}, idempotent);
	Say("demo", "spawned process-order " + order.task_id);

	pid_t first = StartWorker(self, "A");
	// Emit the approval once the order is waiting for it.
	for (int i = 0; i < 200; ++i) {
		if (client.task(order.task_id)->state == "waiting")
			break;
		std::this_thread::sleep_for(50ms);
	}
	Say("demo", "the order waits for approval; emitting order-1001-approved");
	client.emit_event("orders", "order-1001-approved", {{"by", "ann@shop"}});

	// Kill worker A with SIGKILL while it is boxing items (picked, not yet boxed).
	for (int i = 0; i < 400; ++i) {
		pqxx::work tx(client.connection());
		if (tx.exec1("SELECT count(*) FROM demo_effects WHERE effect LIKE 'pick %'")[0].as<int>() >= 2)
			break;
		tx.commit();
		std::this_thread::sleep_for(25ms);
	}
	std::this_thread::sleep_for(300ms);
	Say("demo", "kill -9 worker-A mid-work (its children are picked, not yet boxed)");
	kill(first, SIGKILL);
	waitpid(first, nullptr, 0);
	Say("demo", "starting worker-B; the background worker reclaims A's leases when they expire");
	pid_t second = StartWorker(self, "B");

	belay::TaskInfo done = client.wait_for(order.task_id, 60s);
	Say("demo", "process-order is " + done.state + ": " + done.result.dump());
	kill(second, SIGTERM); // graceful stop
	waitpid(second, nullptr, 0);

	std::cout << "\n=== Summary ===\n";
	pqxx::work tx(client.connection());
	std::cout << "Side effects (each step's effect must appear once):\n";
	bool once = true;
	for (const auto &row : tx.exec("SELECT effect, count(*) FROM demo_effects GROUP BY effect ORDER BY min(at)")) {
		std::cout << "  " << row[0].c_str() << " x" << row[1].c_str() << "\n";
		once = once && row[1].as<int>() == 1;
	}
	std::cout << "Runs:\n";
	for (const auto &row : tx.exec("SELECT t.task_name, r.attempt, r.worker, r.outcome, "
	                               "coalesce(r.error->>'kind', '') FROM belay.runs r JOIN belay.tasks t USING (task_id) "
	                               "ORDER BY r.started_at")) {
		std::printf("  %-14s attempt %s  %-16s %-13s %s\n", row[0].c_str(), row[1].c_str(), row[2].c_str(),
		            row[3].c_str(), row[4].c_str());
	}
	std::cout << (once && done.state == "completed"
	                  ? "\nThe order shipped; no finished step ran twice, although worker-A was killed mid-work.\n"
	                  : "\nSomething went wrong: see above.\n");
	return once && done.state == "completed" ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
	try {
		if (argc >= 3 && std::string(argv[1]) == "worker")
			return RunWorker(argv[2]);
		if (argc >= 2 && std::string(argv[1]) == "demo")
			return RunDemo(argv[0]);
		std::cerr << "usage: order_workflow demo | order_workflow worker NAME\n";
		return 2;
	} catch (const std::exception &e) {
		std::cerr << "order_workflow: " << e.what() << "\n";
		return 1;
	}
}
