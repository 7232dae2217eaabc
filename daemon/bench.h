// daemon/bench.h: `spirit bench`, the load generator: producers and
// consumers against a running daemon, reporting throughput and latency
// percentiles from log-linear (HDR-style) histograms.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace spirit::daemon {

struct BenchArgs {
    int producers = 1;
    int consumers = 0;
    std::size_t payload_bytes = 100;
    std::uint64_t count = 100'000;  // events in total, over all producers
    double rate = 0;                // events/s in total; 0: as fast as possible
    std::string stream = "bench";
    std::string redundancy;  // create the stream with this policy if it is missing
    std::string acks = "majority";
    int in_flight = 1;  // publish calls outstanding per producer
    int batch = 1;      // events per publish call
    bool fresh = true;  // delete the stream before starting
};

void add_bench_options(CLI::App& command, BenchArgs& args);
// `server` is host:port, unix:PATH, or empty for $SPIRIT_SERVER / default.
int run_bench(const std::string& server, const std::string& token, const BenchArgs& args);

// A latency histogram with about 1% relative precision from 1 ns to hours:
// 128 linear sub-buckets per power of two (HdrHistogram's layout).
class LatencyHistogram {
 public:
    void record(std::uint64_t ns);
    void merge(const LatencyHistogram& other);
    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return max_; }
    // The value at percentile `p` (0 < p <= 100), to the histogram's precision.
    std::uint64_t percentile(double p) const;

 private:
    static constexpr int sub_bucket_bits = 7;
    static std::size_t index_of(std::uint64_t ns);
    static std::uint64_t value_of(std::size_t index);
    std::uint64_t buckets_[64 << sub_bucket_bits] = {};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace spirit::daemon
