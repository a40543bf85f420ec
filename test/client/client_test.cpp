// belay::Client: transactional spawn, spawn_many, errors and their mapping, wait_for.
#include "common.hpp"

#include <algorithm>

namespace belay_test {

class ClientTest : public BelayTest {};

// ---------------------------------------------------------------------------------------
// Transactional spawn

TEST_F(ClientTest, SpawnInAnAbortedTransactionLeavesNoTask) {
	std::string q = MakeQueue();
	pqxx::connection connection(belay::DefaultConnectionString());
	std::string id;
	{
		pqxx::work tx(connection);
		belay::Spawned s = belay::Client::spawn(tx, q, "tx-task", {{"n", 1}});
		EXPECT_TRUE(s.created);
		id = s.task_id;
		// Visible inside the transaction...
		EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM belay.tasks WHERE task_id = $1::uuid", id)[0].as<long>(), 1);
		tx.abort();
	}
	// ...and gone with it.
	EXPECT_FALSE(client->task(id).has_value());
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 0);

	// A transaction dropped without commit (an exception in the caller's code) too.
	try {
		pqxx::work tx(connection);
		belay::Client::spawn(tx, q, "tx-task", {{"n", 2}});
		throw std::runtime_error("the caller's business logic failed");
	} catch (const std::runtime_error &) {
	}
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 0);
}

TEST_F(ClientTest, SpawnInACommittedTransactionLeavesOneTaskWithTheCallersRows) {
	std::string q = MakeQueue();
	pqxx::connection connection(belay::DefaultConnectionString());
	std::string marker = "tx-commit-" + q;
	belay::Spawned s;
	{
		pqxx::work tx(connection);
		tx.exec_params(std::string("INSERT INTO ") + kEffects +
		                   " (task_id, effect) VALUES ('00000000-0000-0000-0000-000000000000', $1)",
		               marker);
		s = belay::Client::spawn(tx, q, "tx-task", {{"n", 3}});
		tx.commit();
	}
	std::optional<belay::TaskInfo> info = client->task(s.task_id);
	ASSERT_TRUE(info.has_value());
	EXPECT_EQ(info->state, "pending");
	EXPECT_EQ(info->queue, q);
	EXPECT_EQ(info->task_name, "tx-task");
	EXPECT_EQ(info->params, Json({{"n", 3}}));
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 1);
	EXPECT_EQ(db->Count(std::string("SELECT count(*) FROM ") + kEffects + " WHERE effect = $1", {marker}), 1);
	db->Q(std::string("DELETE FROM ") + kEffects + " WHERE effect = $1", {marker});
}

TEST_F(ClientTest, TransactionalSpawnErrorsAreTranslated) {
	pqxx::connection connection(belay::DefaultConnectionString());
	{
		pqxx::work tx(connection);
		EXPECT_THROW(belay::Client::spawn(tx, "ct.no-such-queue", "t"), belay::UnknownQueue);
	}
	{
		pqxx::work tx(connection);
		belay::SpawnOptions bad;
		bad.max_attempts = 0;
		std::string q = MakeQueue();
		EXPECT_THROW(belay::Client::spawn(tx, q, "t", Json::object(), bad), belay::InvalidArgument);
	}
}

TEST_F(ClientTest, SpawnManyIdempotencyAndOptions) {
	std::string q = MakeQueue();
	std::vector<Json> params;
	for (int i = 0; i < 10; ++i)
		params.push_back({{"i", i}});
	std::vector<belay::Spawned> many = client->spawn_many(q, "batch", params);
	ASSERT_EQ(many.size(), 10u);
	for (int i = 0; i < 10; ++i) {
		EXPECT_TRUE(many[i].created);
		EXPECT_EQ(Task(many[i].task_id).params, params[i]) << "spawn_many returns ids in order";
	}
	EXPECT_TRUE(client->spawn_many(q, "batch", {}).empty());

	belay::SpawnOptions keyed;
	keyed.idempotency_key = "order-1";
	keyed.priority = 5;
	keyed.max_attempts = 7;
	belay::Spawned first = client->spawn(q, "keyed", {{"v", 1}}, keyed);
	belay::Spawned again = client->spawn(q, "keyed", {{"v", 2}}, keyed);
	EXPECT_TRUE(first.created);
	EXPECT_FALSE(again.created);
	EXPECT_EQ(first.task_id, again.task_id);
	belay::TaskInfo info = Task(first.task_id);
	EXPECT_EQ(info.params, Json({{"v", 1}})) << "a repeat spawn changes nothing";
	EXPECT_EQ(info.max_attempts, 7);

	belay::SpawnOptions later;
	later.delay_seconds = 3600;
	belay::Spawned delayed = client->spawn(q, "later", Json::object(), later);
	EXPECT_EQ(Task(delayed.task_id).state, "pending");
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.claim($1, 'ct', 1000, 30) WHERE task_name = 'later'", {q}), 0)
	    << "a delayed task is not claimable yet";
}

// ---------------------------------------------------------------------------------------
// Errors

TEST_F(ClientTest, UnknownQueue) {
	try {
		client->spawn("ct.no-such-queue", "t");
		FAIL() << "spawn to an unknown queue did not throw";
	} catch (const belay::UnknownQueue &e) {
		EXPECT_EQ(e.sqlstate(), "BL003");
		EXPECT_NE(std::string(e.what()).find("ct.no-such-queue"), std::string::npos) << e.what();
	}
	EXPECT_THROW(client->spawn_many("ct.no-such-queue", "t", {Json::object()}), belay::UnknownQueue);
	EXPECT_THROW(client->drop_queue("ct.no-such-queue"), belay::UnknownQueue);
	EXPECT_THROW(client->cleanup(std::string("ct.no-such-queue"), std::chrono::seconds(1)), belay::UnknownQueue);
	// The client is still usable after errors.
	std::string q = MakeQueue();
	EXPECT_TRUE(client->spawn(q, "t").created);
}

TEST_F(ClientTest, BadArgumentsAreInvalidArgument) {
	std::string q = MakeQueue();
	auto expect_invalid = [&](const std::string &what, const std::function<void()> &call) {
		try {
			call();
			ADD_FAILURE() << what << ": no exception";
		} catch (const belay::InvalidArgument &e) {
			EXPECT_EQ(e.sqlstate().substr(0, 2) == "22" || e.sqlstate() == "55000", true)
			    << what << ": sqlstate " << e.sqlstate();
		} catch (const std::exception &e) {
			ADD_FAILURE() << what << ": threw " << typeid(e).name() << ": " << e.what();
		}
	};
	belay::SpawnOptions zero_attempts;
	zero_attempts.max_attempts = 0;
	expect_invalid("max_attempts 0", [&] { client->spawn(q, "t", Json::object(), zero_attempts); });
	belay::SpawnOptions huge_priority;
	huge_priority.priority = 100000;
	expect_invalid("priority out of smallint", [&] { client->spawn(q, "t", Json::object(), huge_priority); });
	belay::SpawnOptions both;
	both.delay_seconds = 1;
	both.run_at = belay::Clock::now();
	expect_invalid("run_at and delay_seconds", [&] { client->spawn(q, "t", Json::object(), both); });
	belay::SpawnOptions bad_retry;
	bad_retry.retry = belay::RetryOptions{};
	bad_retry.retry->kind = "linear";
	expect_invalid("retry kind linear", [&] { client->spawn(q, "t", Json::object(), bad_retry); });
	expect_invalid("params not an object", [&] { client->spawn(q, "t", Json::array({1, 2})); });
	expect_invalid("empty task name", [&] { client->spawn(q, ""); });
	expect_invalid("bad queue name", [&] { client->create_queue("bad queue name!"); });
	expect_invalid("spawn_many with a non-object", [&] { client->spawn_many(q, "t", {Json::object(), Json(3)}); });
	expect_invalid("cancel of a malformed id", [&] { client->cancel("not-a-uuid"); });
	expect_invalid("cancel of an unknown task", [&] { client->cancel("00000000-0000-7000-8000-000000000000"); });
	belay::Spawned pending = client->spawn(q, "t");
	expect_invalid("retry of a pending task", [&] { client->retry(pending.task_id); });
	// A rejected call changes nothing: only the one good spawn exists.
	EXPECT_EQ(db->Count("SELECT count(*) FROM belay.tasks WHERE queue = $1", {q}), 1);

	// Worker options are checked by the client.
	belay::WorkerOptions options = Options(q);
	options.concurrency = 0;
	EXPECT_THROW(belay::Worker{options}, belay::InvalidArgument);
	options = Options(q);
	options.lease_seconds = 0;
	EXPECT_THROW(belay::Worker{options}, belay::InvalidArgument);
}

TEST_F(ClientTest, BadConninfoIsConnectionError) {
	EXPECT_THROW(belay::Client("host=127.0.0.1 port=1 connect_timeout=3"), belay::ConnectionError);
}

// Run-scoped calls made through SQL by a stale run map to LeaseLost, a cancelled one to
// Cancelled (via belay::Translate).
TEST_F(ClientTest, StaleRunMapsToLeaseLostAndCancelledRunToCancelled) {
	std::string q = MakeQueue();
	pqxx::connection connection(belay::DefaultConnectionString());
	auto sql = [&](const std::string &statement, const std::string &run) {
		belay::Translate([&] {
			pqxx::work tx(connection);
			tx.exec_params(statement, run);
			tx.commit();
			return 0;
		});
	};
	auto claim = [&]() {
		pqxx::work tx(connection);
		pqxx::row row = tx.exec_params1("SELECT run_id::text, task_id::text FROM belay.claim($1, 'sql-worker', 1, 60)", q);
		tx.commit();
		return std::make_pair(std::string(row[0].c_str()), std::string(row[1].c_str()));
	};

	belay::Spawned done = client->spawn(q, "t");
	auto [run, task] = claim();
	EXPECT_EQ(task, done.task_id);
	sql("SELECT belay.complete($1::uuid, '{\"ok\": true}'::jsonb)", run);
	try {
		sql("SELECT belay.complete($1::uuid, NULL)", run);
		FAIL() << "a second complete of an ended run succeeded";
	} catch (const belay::LeaseLost &e) {
		EXPECT_EQ(e.sqlstate(), "BL001");
	}
	EXPECT_THROW(sql("SELECT belay.heartbeat($1::uuid)", run), belay::LeaseLost);
	EXPECT_THROW(sql("SELECT belay.set_checkpoint($1::uuid, 's', '1'::jsonb)", run), belay::LeaseLost);
	EXPECT_EQ(Task(done.task_id).result, Json({{"ok", true}})) << "the refused calls changed nothing";

	belay::Spawned victim = client->spawn(q, "t");
	auto [run2, task2] = claim();
	EXPECT_EQ(task2, victim.task_id);
	EXPECT_EQ(client->cancel(victim.task_id), 1);
	try {
		sql("SELECT belay.complete($1::uuid, NULL)", run2);
		FAIL() << "complete of a cancelled task's run succeeded";
	} catch (const belay::Cancelled &e) {
		EXPECT_EQ(e.sqlstate(), "BL002");
	}
	EXPECT_EQ(Task(victim.task_id).state, "cancelled");
	// A never-issued run id is refused too.
	EXPECT_THROW(sql("SELECT belay.complete($1::uuid, NULL)", "00000000-0000-7000-8000-000000000001"),
	             belay::LeaseLost);
	// Other errors keep their SQLSTATE.
	try {
		belay::Translate([&] {
			pqxx::work tx(connection);
			return tx.exec("SELECT 1/0");
		});
		FAIL();
	} catch (const belay::Error &e) {
		EXPECT_EQ(e.sqlstate(), "22012");
	}
}

// ---------------------------------------------------------------------------------------
// wait_for

TEST_F(ClientTest, WaitForReturnsWhenTheTaskEndsWokenByNotification) {
	std::string q = MakeQueue();
	std::vector<double> latencies;
	for (int i = 0; i < 5; ++i) {
		belay::Spawned s = client->spawn(q, "t", {{"i", i}});
		std::atomic<bool> committed{false};
		Steady::time_point committed_at;
		// Another connection claims and completes the task 300 ms into the wait.
		std::thread finisher([&] {
			pqxx::connection connection(belay::DefaultConnectionString());
			std::this_thread::sleep_for(300ms);
			pqxx::work tx(connection);
			tx.exec_params("SELECT belay.complete(run_id, jsonb_build_object('i', $2::int)) "
			               "FROM belay.claim($1, 'finisher', 1, 30)",
			               q, i);
			tx.commit();
			committed_at = Steady::now();
			committed = true;
		});
		auto t0 = Steady::now();
		belay::TaskInfo info;
		try {
			info = client->wait_for(s.task_id, 10s);
		} catch (const std::exception &e) {
			ADD_FAILURE() << "wait_for: " << e.what();
		}
		auto returned = Steady::now();
		finisher.join();
		EXPECT_EQ(info.state, "completed");
		EXPECT_EQ(info.result, Json({{"i", i}}));
		EXPECT_LT(SecondsSince(t0), 5.0);
		latencies.push_back(std::chrono::duration<double>(returned - committed_at).count());
	}
	std::sort(latencies.begin(), latencies.end());
	std::string text;
	for (double l : latencies)
		text += std::to_string(static_cast<int>(l * 1000)) + " ms ";
	std::cout << "wait_for latency after the commit: " << text << "\n";
	// A poll-only wait would return ~700 ms after the commit (1 s slices from the start).
	EXPECT_LT(latencies[2], 0.5) << "median latency " << latencies[2] << " s: is the notification missed?";
}

TEST_F(ClientTest, WaitForAnAlreadyFinishedTaskReturnsAtOnce) {
	std::string q = MakeQueue();
	belay::Spawned s = client->spawn(q, "t");
	EXPECT_EQ(client->cancel(s.task_id), 1);
	auto t0 = Steady::now();
	belay::TaskInfo info = client->wait_for(s.task_id, 10s);
	EXPECT_EQ(info.state, "cancelled");
	EXPECT_LT(SecondsSince(t0), 2.0);
}

TEST_F(ClientTest, WaitForTimesOut) {
	std::string q = MakeQueue();
	belay::Spawned s = client->spawn(q, "t");
	auto t0 = Steady::now();
	EXPECT_THROW(client->wait_for(s.task_id, 400ms), belay::Error);
	double took = SecondsSince(t0);
	EXPECT_GE(took, 0.39);
	EXPECT_LT(took, 3.0);
	EXPECT_THROW(client->wait_for("00000000-0000-7000-8000-000000000002", 400ms), belay::InvalidArgument);
	// The client still works after a timed-out wait.
	EXPECT_EQ(Task(s.task_id).state, "pending");
}

} // namespace belay_test
