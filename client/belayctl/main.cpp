// belayctl: the operator's CLI for belay. This file parses the command line, prints help,
// runs the command and turns what went wrong into a message and an exit code.
#include "cli.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>

namespace belayctl {
namespace {

const char *const kGlobalOptions =
    "Global options (before or after the command):\n"
    "  --db CONNINFO   libpq conninfo or URL (default: $BELAY_DATABASE_URL, else libpq's PG* variables)\n"
    "  --json          print one JSON document (an object or an array) instead of tables\n"
    "  -h, --help      show help\n";

const char *const kExitCodes =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  belay or the server refused (the message names the SQLSTATE)\n"
    "  2  usage: unknown command or option, missing or bad argument\n"
    "  3  not found: no such task (task, cancel, retry), or no such queue (tasks --queue, stats --queue)\n"
    "  4  cannot connect to the server\n";

std::string GeneralHelp() {
	std::ostringstream out;
	out << "belayctl - inspect and operate belay, the task queue inside PostgreSQL\n\n"
	    << "usage: belayctl [--db CONNINFO] [--json] <command> [arguments]\n\n"
	    << "Commands:\n";
	size_t width = 0;
	for (const CommandSpec &command : Commands())
		width = std::max(width, command.name.size());
	for (const CommandSpec &command : Commands())
		out << "  " << command.name << std::string(width - command.name.size() + 2, ' ') << command.summary << "\n";
	out << "\n" << kGlobalOptions << "\n" << kExitCodes << "\nRun 'belayctl help <command>' for a command's options.\n";
	return out.str();
}

std::string CommandHelp(const CommandSpec &command) {
	std::ostringstream out;
	out << "usage: " << command.UsageLine() << "\n\n" << command.summary << "\n";
	if (!command.description.empty())
		out << "\n" << command.description;
	if (!command.options.empty()) {
		out << "\nOptions:\n";
		std::vector<std::pair<std::string, std::string>> rows;
		for (const OptionSpec &option : command.options)
			rows.emplace_back(option.name + (option.value_name.empty() ? "" : " " + option.value_name), option.help);
		out << RenderFields(rows, "  ");
	}
	out << "\n" << kGlobalOptions;
	return out.str();
}

// "ERROR:  message\nDETAIL:  ...\nHINT:  ...\n" -> the message and the other lines.
void PrintServerMessage(const std::string &what, const std::string &sqlstate, const std::string &prefix) {
	std::istringstream lines(what);
	std::string line, first;
	std::vector<std::string> rest;
	while (std::getline(lines, line)) {
		if (line.empty())
			continue;
		if (first.empty()) {
			for (const char *tag : {"ERROR:  ", "FATAL:  "})
				if (line.rfind(tag, 0) == 0)
					line = line.substr(std::string(tag).size());
			first = line;
		} else {
			rest.push_back(line);
		}
	}
	if (first.empty())
		first = "unknown error";
	std::cerr << "belayctl: " << prefix << first;
	if (!sqlstate.empty())
		std::cerr << " (SQLSTATE " << sqlstate << ")";
	std::cerr << "\n";
	for (const std::string &extra : rest) {
		size_t start = extra.find_first_not_of(" \t");
		std::cerr << "belayctl:   " << (start == std::string::npos ? extra : extra.substr(start)) << "\n";
	}
	// Undefined schema, function or table: belay is most likely not installed in this database.
	if (sqlstate == "3F000" || sqlstate == "42883" || sqlstate == "42P01")
		std::cerr << "belayctl: hint: is belay installed in this database? (CREATE EXTENSION belay)\n";
}

int Usage(const std::string &message, const CommandSpec *command) {
	std::cerr << "belayctl: " << message << "\n";
	if (command)
		std::cerr << "usage: " << command->UsageLine() << "\nRun 'belayctl help " << command->name
		          << "' for more.\n";
	else {
		std::string names;
		for (const CommandSpec &c : Commands())
			names += (names.empty() ? "" : ", ") + c.name;
		std::cerr << "usage: belayctl [--db CONNINFO] [--json] <command> [arguments]\n"
		          << "commands: " << names << "\nRun 'belayctl help' for more.\n";
	}
	return kExitUsage;
}

int Run(const std::vector<std::string> &argv) {
	const CommandSpec *command = nullptr;
	try {
		std::vector<std::string> args;
		std::map<std::string, std::string> options;
		std::optional<std::string> db;
		bool json = false, help = false, no_more_options = false;

		for (size_t i = 0; i < argv.size(); ++i) {
			const std::string &arg = argv[i];
			if (!no_more_options && arg == "--") {
				no_more_options = true;
				continue;
			}
			if (no_more_options || arg.size() < 2 || arg[0] != '-') {
				if (!command) {
					command = FindCommand(arg);
					if (!command)
						throw UsageError("unknown command \"" + arg + "\"");
				} else {
					args.push_back(arg);
				}
				continue;
			}
			std::string name = arg, value;
			bool inline_value = false;
			size_t eq = arg.find('=');
			if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
				name = arg.substr(0, eq);
				value = arg.substr(eq + 1);
				inline_value = true;
			}
			auto take_value = [&]() -> std::string {
				if (inline_value)
					return value;
				if (i + 1 >= argv.size())
					throw UsageError("option " + name + " needs a value");
				return argv[++i];
			};
			auto no_value = [&] {
				if (inline_value)
					throw UsageError("option " + name + " takes no value");
			};
			if (name == "-h" || name == "--help") {
				no_value();
				help = true;
			} else if (name == "--json") {
				no_value();
				json = true;
			} else if (name == "--db") {
				db = take_value();
			} else if (const OptionSpec *option = command ? command->FindOption(name) : nullptr) {
				if (option->value_name.empty()) {
					no_value();
					options[name] = "";
				} else {
					options[name] = take_value();
				}
			} else {
				throw UsageError("unknown option " + name + (command ? " for " + command->name : ""));
			}
		}

		if (help || (command && command->name == "help")) {
			if (command && command->name == "help" && !args.empty()) {
				const CommandSpec *topic = FindCommand(args[0]);
				if (!topic || args.size() > 1) {
					command = nullptr;
					throw UsageError("unknown command \"" + args[0] + "\"");
				}
				std::cout << CommandHelp(*topic);
			} else if (command && command->name != "help") {
				std::cout << CommandHelp(*command);
			} else {
				std::cout << GeneralHelp();
			}
			return kExitOk;
		}
		if (!command)
			throw UsageError("no command given");
		if (args.size() < command->min_args)
			throw UsageError(command->name + ": missing argument" + (command->min_args - args.size() > 1 ? "s" : "") +
			                 " (expected " + command->arguments + ")");
		if (args.size() > command->max_args)
			throw UsageError(command->name + ": unexpected argument \"" + args[command->max_args] + "\"");

		Invocation invocation(*command, std::move(args), std::move(options), json, std::move(db));
		return command->run(invocation);
	} catch (const UsageError &e) {
		return Usage(e.what(), command);
	} catch (const NotFound &e) {
		std::cerr << "belayctl: " << e.what() << "\n";
		return kExitNotFound;
	} catch (const belay::OutcomeUnknown &e) {
		PrintServerMessage(e.what(), e.sqlstate(), "the connection broke during the commit; the outcome is unknown: ");
		return kExitError;
	} catch (const belay::ConnectionError &e) {
		PrintServerMessage(e.what(), e.sqlstate(), "cannot connect: ");
		return kExitConnect;
	} catch (const belay::Error &e) {
		PrintServerMessage(e.what(), e.sqlstate(), "");
		return kExitError;
	} catch (const std::exception &e) {
		std::cerr << "belayctl: " << e.what() << "\n";
		return kExitError;
	}
}

} // namespace

const OptionSpec *CommandSpec::FindOption(const std::string &name) const {
	for (const OptionSpec &option : options)
		if (option.name == name)
			return &option;
	return nullptr;
}

std::string CommandSpec::UsageLine() const {
	std::string line = "belayctl " + name;
	if (!arguments.empty())
		line += " " + arguments;
	for (const OptionSpec &option : options)
		line += " [" + option.name + (option.value_name.empty() ? "" : " " + option.value_name) + "]";
	return line;
}

const CommandSpec *FindCommand(const std::string &name) {
	for (const CommandSpec &command : Commands())
		if (command.name == name)
			return &command;
	return nullptr;
}

Invocation::Invocation(const CommandSpec &command_, std::vector<std::string> args_,
                       std::map<std::string, std::string> options, bool json_, std::optional<std::string> db)
    : command(command_), args(std::move(args_)), json(json_), options_(std::move(options)), db_(std::move(db)) {}

Invocation::~Invocation() = default;

std::optional<std::string> Invocation::Option(const std::string &name) const {
	auto it = options_.find(name);
	if (it == options_.end())
		return std::nullopt;
	return it->second;
}

belay::Client &Invocation::client() {
	if (!client_) {
		auto client = std::make_unique<belay::Client>(db_ ? *db_ : belay::DefaultConnectionString());
		// Timestamps as ISO text whatever the server's DateStyle, for IsoTime/TableTime.
		belay::Translate([&] {
			pqxx::nontransaction tx(client->connection());
			tx.exec("SET DateStyle TO ISO, YMD");
		});
		client_ = std::move(client);
	}
	return *client_;
}

} // namespace belayctl

int main(int argc, char **argv) {
	std::vector<std::string> args(argv + 1, argv + argc);
	int code = belayctl::Run(args);
	std::cout.flush();
	return code;
}
