// What the race programs (test/concurrency/claim_race.cpp, test/fault/emit_race.cpp) share:
// their checks and tally, the SQLSTATE of a libpqxx 6.4 exception, and their option values.
// Header-only; each program includes it by its relative path.
#pragma once

#include <pqxx/pqxx>

#include <cstdlib>
#include <iostream>
#include <string>

namespace race {

inline int passed = 0, failed = 0;

// One checked statement of the report: "ok" or "FAILED", its name and what was seen.
inline void Check(bool ok, const std::string &name, const std::string &detail = "") {
	(ok ? passed : failed)++;
	std::cout << (ok ? "ok     " : "FAILED ") << name;
	if (!detail.empty())
		std::cout << " (" << detail << ")";
	std::cout << "\n" << std::flush;
}

// The last line, "N passed, M failed"; returns the exit status (1 on any failure).
inline int Tally() {
	std::cout << passed << " passed, " << failed << " failed\n";
	return failed == 0 ? 0 : 1;
}

// libpqxx 6.4 throws 40P01 and 40001 as transaction_rollback subclasses, not sql_error.
inline std::string SqlState(const std::exception &e) {
	if (auto *sql = dynamic_cast<const pqxx::sql_error *>(&e))
		return sql->sqlstate();
	if (dynamic_cast<const pqxx::deadlock_detected *>(&e))
		return "40P01";
	if (dynamic_cast<const pqxx::serialization_failure *>(&e))
		return "40001";
	if (dynamic_cast<const pqxx::broken_connection *>(&e))
		return "08006";
	return "";
}

inline std::string Trim(std::string s) {
	while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
		s.pop_back();
	return s;
}

// The number after option argv[i] (advancing i); exits with status 2 when it is missing
// or below min.
inline long OptionValue(const char *program, int argc, char **argv, int &i, long min) {
	std::string option = argv[i];
	if (i + 1 >= argc) {
		std::cerr << program << ": " << option << " needs a value\n";
		std::exit(2);
	}
	long value = std::atol(argv[++i]);
	if (value < min) {
		std::cerr << program << ": " << option << " must be at least " << min << "\n";
		std::exit(2);
	}
	return value;
}

} // namespace race
