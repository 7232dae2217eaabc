// daemon/ops/metrics.h: spiritd's Prometheus metrics (docs/operations.md,
// "Metrics reference"). prometheus-cpp holds the counters and histograms the
// loop thread adds to as things happen (publishes, deliveries, refused
// connections) and writes the text exposition; the gauges come from a
// Sample the loop thread takes every second and from the store (its commit
// histograms, space and quarantine), read when /metrics is scraped.
//
// Label sets are bounded: the first stream_labels_max streams seen get
// series of their own and every other stream adds to stream="_other"; the
// consumer_labels_max slowest durable consumers get a lag series each and
// the rest are summed under consumer="_other"; peers are the configured ones.
//
// Threads: the recording calls and set_sample() on the loop thread only;
// render() on any thread (the HTTP server's).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/stream_policy.h"
#include "daemon/config.h"
#include "daemon/ops/health.h"
#include "storage/store.h"

namespace prometheus {
class Counter;
class Histogram;
class Registry;
template <class T>
class Family;
}  // namespace prometheus

namespace spirit::topology {
enum class StepDownCause : std::uint8_t;
}

namespace spirit::daemon::ops {

// The label value that sums every stream or consumer past the cap.
inline constexpr std::string_view other_label = "_other";

// What the loop thread sees, every second.
struct Sample {
    std::uint64_t connections = 0;
    std::uint64_t subscriptions = 0;
    std::string role;  // "single", "master", "slave", "witness", "electing"
    std::uint64_t epoch = 0;
    std::string master;  // "" while none is known
    // Since this node last heard from the master it knows (0 on the master);
    // unset while none is known, and alone.
    std::optional<std::uint64_t> master_contact_ms;
    struct Peer {
        std::string id;
        bool connected = false;
        std::uint64_t lag_events = 0;  // on the master
        std::uint64_t lag_ms = 0;      // on the master: since it last held everything
    };
    std::vector<Peer> peers;
    struct Consumer {
        std::string consumer;
        std::string stream;
        std::uint64_t acked = 0;
        std::uint64_t last_seq = 0;
        std::uint64_t lag_events = 0;
    };
    std::vector<Consumer> consumers;  // every durable consumer with an open subscription
    std::uint64_t outbox_events = 0;
    std::uint64_t replication_errors = 0;
    Readiness readiness;
    std::uint64_t start_time_ms = 0;  // Unix time the process started
};

class Metrics {
 public:
    // REQUIRES: `store` outlives this object.
    Metrics(const Config& config, const storage::Store& store);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // A publish of `events` new events (`bytes`: its frame's body) was
    // acknowledged `seconds` after it arrived; `redundancy`: immediate when
    // acknowledged after its copies, else eventual.
    void publish_acked(std::string_view stream, std::uint64_t events, std::uint64_t bytes,
                       core::Redundancy redundancy, double seconds);
    // A publish was refused or failed with the error code named `code`.
    void publish_failed(std::string_view code);
    // `events` of `stream` (`bytes` of envelopes) went to a subscriber.
    void delivered(std::string_view stream, std::uint64_t events, std::uint64_t bytes);
    // A connection was refused or closed for `reason` (too_many_connections,
    // unauthorized, bad_version, hello_timeout, shutting_down).
    void connection_refused(std::string_view reason);

    // Elections, as daemon/cluster/cluster.cc learns of them. This node
    // asked for pre-votes; it stood (voted for itself and asked for votes);
    // a majority voted for it.
    void pre_vote_started();
    void election_started();
    void election_won();
    // This node gave up the master's role (or the one it had just won).
    void stepped_down(topology::StepDownCause cause);
    // A master of a newer epoch became known to this node (this node
    // included), `failover_seconds` after it last heard from the one before
    // (or stepped down itself); nullopt when it never heard from that one.
    void master_changed(std::optional<double> failover_seconds);

    void set_sample(Sample sample);
    // The readiness of the latest sample (any thread).
    Readiness readiness() const;

    // The text exposition of every metric (Prometheus format 0.0.4).
    std::string render() const;

 private:
    struct StreamSeries;
    StreamSeries& series_of(std::string_view stream);

    const Config& config_;
    const storage::Store& store_;
    std::unique_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>* published_events_;
    prometheus::Family<prometheus::Counter>* published_bytes_;
    prometheus::Family<prometheus::Counter>* delivered_events_;
    prometheus::Family<prometheus::Counter>* delivered_bytes_;
    prometheus::Family<prometheus::Counter>* publish_errors_;
    prometheus::Family<prometheus::Counter>* refused_;
    prometheus::Histogram* ack_eventual_;
    prometheus::Histogram* ack_immediate_;
    prometheus::Counter* pre_votes_started_;
    prometheus::Counter* elections_started_;
    prometheus::Counter* elections_won_;
    prometheus::Counter* master_changes_;
    prometheus::Histogram* failover_;
    std::vector<prometheus::Counter*> step_downs_;  // by StepDownCause
    // Loop thread only.
    std::unordered_map<std::string, std::unique_ptr<StreamSeries>> streams_;
    std::unique_ptr<StreamSeries> other_;
    std::unordered_map<std::string, prometheus::Counter*> error_counters_;
    std::unordered_map<std::string, prometheus::Counter*> refused_counters_;

    mutable std::mutex sample_mutex_;
    Sample sample_;  // under sample_mutex_
};

}  // namespace spirit::daemon::ops
