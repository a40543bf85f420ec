// One connection with belay's statements prepared, reconnecting after a break. Used by
// one thread at a time. Internal to the client library.
#pragma once

#include "belay/client/errors.hpp"

#include <pqxx/pqxx>

#include <memory>
#include <optional>
#include <string>

namespace belay {

class Session {
public:
	explicit Session(std::string conninfo);

	// Runs fn(tx) in one transaction and commits it. libpqxx errors become belay::Error;
	// a broken connection is dropped (the next call reconnects) and thrown as
	// ConnectionError, or OutcomeUnknown if it broke during the commit.
	template <typename F>
	auto Transact(F &&fn) -> decltype(fn(std::declval<pqxx::work &>()));

	pqxx::connection &Connection(); // connects (and prepares) if needed
	void Drop();                    // forget the connection; the next use reconnects
	const std::string &conninfo() const { return conninfo_; }

private:
	std::string conninfo_;
	std::unique_ptr<pqxx::connection> connection_;
	// A dropped connection lives until the next connect, so objects bound to it (a
	// notification receiver) can still be destroyed safely after a break.
	std::unique_ptr<pqxx::connection> retired_;
};

// NULL for an absent value, for statement parameters.
inline const char *OrNull(const std::optional<std::string> &value) { return value ? value->c_str() : nullptr; }

template <typename F>
auto Session::Transact(F &&fn) -> decltype(fn(std::declval<pqxx::work &>())) {
	try {
		pqxx::work tx(Connection());
		if constexpr (std::is_void_v<decltype(fn(tx))>) {
			fn(tx);
			tx.commit();
		} else {
			auto out = fn(tx);
			tx.commit();
			return out;
		}
	} catch (const pqxx::broken_connection &) {
		Drop();
		RethrowAsBelayError();
	} catch (const pqxx::in_doubt_error &) {
		Drop();
		RethrowAsBelayError();
	} catch (const Error &) {
		throw;
	} catch (...) {
		RethrowAsBelayError();
	}
}

} // namespace belay
