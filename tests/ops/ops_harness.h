// tests/ops/ops_harness.h: helpers for the operations tests: an HTTP GET
// against a daemon's metrics listener, reading one sample out of a scrape,
// and a steady publish load on a thread of its own that records when each
// publish was acknowledged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/envelope.h"
#include "net/client.h"

namespace spirit::test {

struct HttpReply {
    int status = 0;  // 0: no answer
    std::string body;
};

// One request to 127.0.0.1:port (HTTP/1.0, so the server closes).
HttpReply http_request(std::uint16_t port, const std::string& path,
                       const std::string& method = "GET");

// The value of the sample `series` ("name" or "name{label=\"v\",...}", as
// written in the exposition) in a scrape; nullopt if it is not there.
std::optional<double> sample_value(const std::string& scrape, const std::string& series);
// The same, REQUIREd (Catch2, the test's thread) to be there.
double metric_value(const std::string& scrape, const std::string& series);
// CHECKs (Catch2) that `promtool check metrics` accepts every line of a
// scrape and says nothing on stderr.
void check_promtool_accepts(const std::string& scrape);

// Publishes batches of 10 events (ids event_id(first_id + i)) to `stream`
// from its own thread, 8 batches in flight, until stop(); keeps each
// batch's ids, receipt and the time its ack arrived.
class Load {
 public:
    struct Batch {
        std::vector<core::EventId> ids;
        std::optional<core::Result<net::PublishReceipt>> result;
        std::chrono::steady_clock::time_point acked_at;
    };

    Load(net::Endpoint endpoint, std::string stream, std::uint64_t first_id);
    ~Load();  // stop()
    // Waits for the thread; returns every batch (in publish order).
    const std::vector<Batch>& stop();
    std::uint64_t acked() const { return acked_.load(); }

 private:
    void run();

    net::Endpoint endpoint_;
    std::string stream_;
    std::uint64_t first_id_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> acked_{0};
    std::vector<Batch> batches_;
    std::thread thread_;
};

}  // namespace spirit::test
