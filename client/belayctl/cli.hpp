// belayctl: the operator's CLI for belay. Declarations shared by its files:
//   main.cpp      argument parsing, help, dispatch, errors -> exit codes
//   args.cpp      checking argument values (JSON, UUIDs, durations, states) before connecting
//   commands.cpp  the commands
//   output.cpp    aligned tables, key/value blocks, JSON and timestamp formatting
#pragma once

#include <belay/client.hpp>

#include <pqxx/pqxx>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace belayctl {

using belay::Json;
// Output documents keep their keys in the order written (task_id first, ...).
using Doc = nlohmann::ordered_json;

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;     // belay or the server refused, or something else went wrong
constexpr int kExitUsage = 2;     // unknown command or option, missing or bad argument
constexpr int kExitNotFound = 3;  // the task (or the queue of a listing) does not exist
constexpr int kExitConnect = 4;   // cannot connect to the server

// A bad command line: exit 2, with the usage of the command.
struct UsageError : std::runtime_error {
	using std::runtime_error::runtime_error;
};

// The task or queue asked about does not exist: exit 3.
struct NotFound : std::runtime_error {
	using std::runtime_error::runtime_error;
};

class Invocation;

struct OptionSpec {
	std::string name;       // "--queue"
	std::string value_name; // "Q"; empty for a flag
	std::string help;
};

struct CommandSpec {
	std::string name;
	std::string arguments; // "<queue> <task_name>", for the usage line
	size_t min_args = 0;
	size_t max_args = 0;
	std::vector<OptionSpec> options;
	std::string summary;     // one line, for the command list
	std::string description; // more, for `belayctl help <command>`
	int (*run)(Invocation &) = nullptr;

	const OptionSpec *FindOption(const std::string &name) const;
	std::string UsageLine() const;
};

// The commands, in the order `belayctl help` lists them.
const std::vector<CommandSpec> &Commands();
const CommandSpec *FindCommand(const std::string &name);

// One parsed command line. The connection is opened on the first call to client(), so a
// command checks its arguments first and connects only when they are good.
class Invocation {
public:
	Invocation(const CommandSpec &command, std::vector<std::string> args, std::map<std::string, std::string> options,
	           bool json, std::optional<std::string> db);
	~Invocation();

	const CommandSpec &command;
	const std::vector<std::string> args;
	const bool json;

	std::optional<std::string> Option(const std::string &name) const;
	bool Flag(const std::string &name) const { return options_.count(name) > 0; }

	belay::Client &client();
	pqxx::connection &connection() { return client().connection(); }

	// Runs fn(tx) in a read-only transaction; libpqxx errors become belay::Error.
	template <typename F>
	auto ReadOnly(F &&fn) -> decltype(fn(std::declval<pqxx::read_transaction &>()));

private:
	std::map<std::string, std::string> options_;
	std::optional<std::string> db_;
	std::unique_ptr<belay::Client> client_;
};

template <typename F>
auto Invocation::ReadOnly(F &&fn) -> decltype(fn(std::declval<pqxx::read_transaction &>())) {
	pqxx::connection &conn = connection(); // may throw ConnectionError: keep it out of Translate's catch-all
	return belay::Translate([&] {
		pqxx::read_transaction tx(conn);
		if constexpr (std::is_void_v<decltype(fn(tx))>) {
			fn(tx);
			tx.commit();
		} else {
			auto out = fn(tx);
			tx.commit();
			return out;
		}
	});
}

// --- args.cpp: argument values, checked before connecting (UsageError when bad) ---
Json ParseJsonArgument(const std::string &option, const std::string &text);
// A task id: a UUID (hyphens optional, braces allowed, as PostgreSQL reads it).
std::string CheckTaskId(const std::string &text);
// A whole number of seconds, optionally with a unit: 90, 90s, 15m, 12h, 7d.
long ParseSeconds(const std::string &option, const std::string &text, long min);
long ParseCount(const std::string &option, const std::string &text, long min, long max);
// Public task states: pending (covers the internal 'scheduled'), running, sleeping,
// waiting, completed, failed, cancelled.
const std::vector<std::string> &PublicStates();
std::string CheckState(const std::string &text);
// The spawn options as a SpawnOptions when that represents them exactly (so that the
// library's Client::spawn sends the same object); nullopt when it cannot.
std::optional<belay::SpawnOptions> ExactSpawnOptions(const Json &options);

// --- output.cpp ---
class Table {
public:
	explicit Table(std::vector<std::string> headers);
	Table &RightAlign(std::vector<size_t> columns);
	void Add(std::vector<std::string> cells);
	bool empty() const { return rows_.empty(); }
	size_t size() const { return rows_.size(); }
	// Columns separated by two spaces, each line prefixed by indent; no trailing blanks.
	std::string Render(const std::string &indent = "") const;

private:
	std::vector<std::string> headers_;
	std::vector<bool> right_;
	std::vector<std::vector<std::string>> rows_;
};

// "key  value" lines with the keys padded to one width.
std::string RenderFields(const std::vector<std::pair<std::string, std::string>> &fields,
                         const std::string &indent = "");

// PostgreSQL's ISO timestamp text ("2024-05-01 12:00:00.123456+00") as ISO 8601
// ("2024-05-01T12:00:00.123456+00:00") for JSON, and shortened to whole seconds
// ("2024-05-01 12:00:00+00") for tables; "-" / null when absent.
std::string IsoTime(const std::string &pg);
Doc TimeJson(const std::optional<std::string> &pg);
std::string TableTime(const std::optional<std::string> &pg);
std::optional<std::string> OptText(const pqxx::field &field);
Json JsonField(const pqxx::field &field); // jsonb column -> Json (null for NULL)

// A JSON value for a table cell: compact, "-" for null, cut to max_chars (0: no limit).
std::string CellJson(const Json &value, size_t max_chars = 0);
// Makes text safe for one table cell (control characters escaped).
std::string Cell(const std::string &text);
// 0.5s, 12.3s, 5m03s, 2h05m, 3d04h.
std::string HumanSeconds(double seconds);
std::string Fixed(double value, int decimals);
// A whole number of seconds: 0s, 45s, 1m30s, 12h, 7d.
std::string HumanDuration(long seconds);
// A rate per second for tables: 0, 0.00028, 0.33, 12.50, 340.
std::string Rate(double per_second);

void PrintJson(const Doc &document);

} // namespace belayctl
