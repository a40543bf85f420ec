// Shared by the benchmark programs in bench/: argument parsing, percentiles, output.
//
// Every program prints its figures as `key=value` lines on stdout (scripts/bench.sh reads
// them) and its complaints on stderr; it exits non-zero when the run is not valid.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

using Steady = std::chrono::steady_clock;

// --key value pairs; a bare --flag is "1".
class Args {
public:
	Args(int argc, char **argv) {
		for (int i = 1; i < argc; ++i) {
			std::string key = argv[i];
			if (key.rfind("--", 0) != 0)
				throw std::invalid_argument("unexpected argument: " + key);
			key = key.substr(2);
			if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
				values_[key] = argv[++i];
			else
				values_[key] = "1";
		}
	}
	std::string Str(const std::string &key, const std::string &fallback) const {
		auto it = values_.find(key);
		return it == values_.end() ? fallback : it->second;
	}
	long Int(const std::string &key, long fallback) const {
		auto it = values_.find(key);
		return it == values_.end() ? fallback : std::stol(it->second);
	}
	double Num(const std::string &key, double fallback) const {
		auto it = values_.find(key);
		return it == values_.end() ? fallback : std::stod(it->second);
	}

private:
	std::map<std::string, std::string> values_;
};

// Nearest-rank percentile (p in 0..100) of a sample; NaN when empty.
inline double Percentile(std::vector<double> sample, double p) {
	if (sample.empty())
		return 0.0 / 0.0;
	std::sort(sample.begin(), sample.end());
	size_t rank = static_cast<size_t>(std::max(1.0, std::ceil(p / 100.0 * sample.size())));
	return sample[std::min(rank, sample.size()) - 1];
}

inline double SecondsSince(Steady::time_point start) {
	return std::chrono::duration<double>(Steady::now() - start).count();
}

inline int64_t SteadyMicros() {
	return std::chrono::duration_cast<std::chrono::microseconds>(Steady::now().time_since_epoch()).count();
}

inline int64_t WallMicros() {
	return std::chrono::duration_cast<std::chrono::microseconds>(
	           std::chrono::system_clock::now().time_since_epoch())
	    .count();
}

template <typename T>
void Put(const std::string &key, const T &value) {
	std::cout << key << "=" << value << "\n" << std::flush;
}

// Latency summary of a sample in milliseconds: <prefix>_p50, _p99, _max, _n.
inline void PutLatency(const std::string &prefix, const std::vector<double> &ms) {
	char buffer[64];
	auto put = [&](const char *suffix, double value) {
		std::snprintf(buffer, sizeof buffer, "%.3f", value);
		Put(prefix + suffix, buffer);
	};
	put("_p50", Percentile(ms, 50));
	put("_p99", Percentile(ms, 99));
	put("_max", ms.empty() ? 0.0 / 0.0 : *std::max_element(ms.begin(), ms.end()));
	Put(prefix + "_n", ms.size());
}

// The main() of a program that measures belay (--mode belay) and its baseline (another
// mode): runs the mode asked for, and reports errors and bad modes under the program's name.
using Mode = int (*)(const Args &);
inline int RunMode(int argc, char **argv, const char *program, Mode belay, const char *baseline_name, Mode baseline) {
	try {
		Args args(argc, argv);
		std::string mode = args.Str("mode", "belay");
		if (mode == "belay")
			return belay(args);
		if (mode == baseline_name)
			return baseline(args);
		std::cerr << program << ": --mode belay|" << baseline_name << "\n";
		return 2;
	} catch (const std::exception &e) {
		std::cerr << program << ": " << e.what() << "\n";
		return 1;
	}
}

} // namespace bench
