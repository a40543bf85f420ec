// listen_wait: LISTEN on a channel and report when a notification with a given payload
// arrives. A helper of test/fault/timing.sh (built by test/fault/build.sh).
//
//   build/listen_wait CHANNEL PAYLOAD TIMEOUT_SECONDS
//
// Connects with libpq's environment, LISTENs, prints "ready <epoch seconds>" once the
// LISTEN is in effect, then waits. Every notification on CHANNEL is printed as
// "notify <payload> <epoch seconds of receipt>"; the first one with PAYLOAD ends the
// program with status 0. Status 1 when none came within TIMEOUT_SECONDS, 2 on an error.
// The epoch is the system clock of this host (the same clock the server uses here).
#include <pqxx/pqxx>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace {

double Epoch() {
	return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Receiver : public pqxx::notification_receiver {
public:
	Receiver(pqxx::connection_base &c, const std::string &channel, std::string wanted)
	    : pqxx::notification_receiver(c, channel), wanted_(std::move(wanted)) {}
	void operator()(const std::string &payload, int) override {
		std::printf("notify %s %.6f\n", payload.c_str(), Epoch());
		std::fflush(stdout);
		if (payload == wanted_)
			got_ = true;
	}
	bool got() const { return got_; }

private:
	std::string wanted_;
	bool got_ = false;
};

} // namespace

int main(int argc, char **argv) {
	if (argc != 4) {
		std::cerr << "usage: listen_wait CHANNEL PAYLOAD TIMEOUT_SECONDS\n";
		return 2;
	}
	const std::string channel = argv[1], payload = argv[2];
	const double timeout = std::atof(argv[3]);
	try {
		pqxx::connection conn("");
		Receiver receiver(conn, channel, payload); // issues LISTEN
		// A round trip: the LISTEN is registered before we say we are ready.
		{
			pqxx::nontransaction tx(conn);
			tx.exec("SELECT 1");
		}
		std::printf("ready %.6f\n", Epoch());
		std::fflush(stdout);
		const double deadline = Epoch() + timeout;
		while (!receiver.got()) {
			double left = deadline - Epoch();
			if (left <= 0) {
				std::printf("timeout %.6f\n", Epoch());
				return 1;
			}
			long usecs = static_cast<long>(left * 1e6);
			conn.await_notification(usecs / 1000000, usecs % 1000000);
		}
		return 0;
	} catch (const std::exception &e) {
		std::printf("error %s\n", e.what());
		return 2;
	}
}
