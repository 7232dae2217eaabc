#include "daemon/ops/metrics.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "core/assert.h"
#include "daemon/server.h"
#include "topology/elector.h"

namespace spirit::daemon::ops {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The one replica group there is until placement exists.
constexpr const char* group = "default";

const prometheus::Histogram::BucketBoundaries ack_buckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

// From a lost master to a known new one: an election takes one to two
// election timeouts (1 s by default; a WAN cluster's are longer).
const prometheus::Histogram::BucketBoundaries failover_buckets = {
    0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60, 120,
};

ClientMetric gauge(double value, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    return m;
}

ClientMetric counter(double value) {
    ClientMetric m;
    m.counter.value = value;
    return m;
}

MetricFamily family(std::string name, std::string help, MetricType type,
                    std::vector<ClientMetric> metrics) {
    return MetricFamily{std::move(name), std::move(help), type, std::move(metrics)};
}

MetricFamily one_gauge(std::string name, std::string help, double value) {
    return family(std::move(name), std::move(help), MetricType::Gauge, {gauge(value)});
}

// A storage histogram (integer bounds in `unit`s) as a Prometheus one,
// scaled by `scale` (1e-6 for microseconds to seconds).
MetricFamily histogram(std::string name, std::string help, const storage::HistogramSnapshot& s,
                       double scale) {
    ClientMetric m;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < s.counts.size(); ++i) {
        cumulative += s.counts[i];
        const double bound = i < s.bounds.size() ? static_cast<double>(s.bounds[i]) * scale
                                                 : std::numeric_limits<double>::infinity();
        m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(s.sum) * scale;
    return family(std::move(name), std::move(help), MetricType::Histogram, {m});
}

// "0.1.0" of "spiritd 0.1.0".
std::string version_number() {
    std::string v = server_version();
    const std::size_t space = v.find(' ');
    return space == std::string::npos ? v : v.substr(space + 1);
}

void add_cluster_families(const Sample& s, std::vector<MetricFamily>& out) {
    std::vector<ClientMetric> roles;
    for (const char* role : {"single", "master", "slave", "witness", "electing"}) {
        roles.push_back(gauge(s.role == role ? 1 : 0, {{"group", group}, {"role", role}}));
    }
    out.push_back(family("spirit_role", "This node's role in its group: 1 for the role it has.",
                         MetricType::Gauge, std::move(roles)));
    out.push_back(family("spirit_epoch", "The epoch of the role this node knows.",
                         MetricType::Gauge,
                         {gauge(static_cast<double>(s.epoch), {{"group", group}})}));
    std::vector<ClientMetric> master;
    if (!s.master.empty()) master.push_back(gauge(1, {{"group", group}, {"master", s.master}}));
    out.push_back(family("spirit_master_info",
                         "The master this node knows (no series while none is known).",
                         MetricType::Gauge, std::move(master)));
    std::vector<ClientMetric> contact;
    if (s.master_contact_ms) {
        contact.push_back(
            gauge(static_cast<double>(*s.master_contact_ms) / 1000.0, {{"group", group}}));
    }
    out.push_back(family("spirit_master_last_contact_seconds",
                         "Seconds since this node last heard from the master it knows (0 on the "
                         "master; no series while none is known, or alone).",
                         MetricType::Gauge, std::move(contact)));
    std::vector<ClientMetric> connected, lag_events, lag_seconds;
    for (const Sample::Peer& p : s.peers) {
        connected.push_back(gauge(p.connected ? 1 : 0, {{"peer", p.id}}));
        if (s.role != "master") continue;
        lag_events.push_back(gauge(static_cast<double>(p.lag_events), {{"peer", p.id}}));
        lag_seconds.push_back(gauge(static_cast<double>(p.lag_ms) / 1000.0, {{"peer", p.id}}));
    }
    out.push_back(family("spirit_peer_connected", "Whether the link to a peer is up.",
                         MetricType::Gauge, std::move(connected)));
    out.push_back(family("spirit_replication_lag_events",
                         "On the master: events a slave does not hold yet, over every stream.",
                         MetricType::Gauge, std::move(lag_events)));
    out.push_back(family("spirit_replication_lag_seconds",
                         "On the master: seconds since a slave last held every event the master "
                         "had (0 while it does).",
                         MetricType::Gauge, std::move(lag_seconds)));
}

// The `cap` slowest consumers get a series each, the rest one summed series.
MetricFamily consumer_lag_family(std::vector<Sample::Consumer> consumers, std::size_t cap) {
    std::sort(consumers.begin(), consumers.end(), [](const auto& a, const auto& b) {
        return std::tie(b.lag_events, a.consumer, a.stream) <
               std::tie(a.lag_events, b.consumer, b.stream);
    });
    std::vector<ClientMetric> metrics;
    std::uint64_t other = 0;
    bool has_other = false;
    for (std::size_t i = 0; i < consumers.size(); ++i) {
        const Sample::Consumer& c = consumers[i];
        if (i < cap) {
            metrics.push_back(gauge(static_cast<double>(c.lag_events),
                                    {{"consumer", c.consumer}, {"stream", c.stream}}));
        } else {
            other += c.lag_events;
            has_other = true;
        }
    }
    if (has_other) {
        metrics.push_back(
            gauge(static_cast<double>(other),
                  {{"consumer", std::string(other_label)}, {"stream", std::string(other_label)}}));
    }
    return family("spirit_consumer_lag_events",
                  "Events of a stream after a durable consumer's last acknowledgement (open "
                  "subscriptions).",
                  MetricType::Gauge, std::move(metrics));
}

void add_storage_families(const storage::Store& store, std::vector<MetricFamily>& out) {
    const storage::StoreStats stats = store.stats();
    auto total = [&](std::string name, std::string help, std::uint64_t v) {
        out.push_back(family(std::move(name), std::move(help), MetricType::Counter,
                             {counter(static_cast<double>(v))}));
    };
    total("spirit_storage_commits_total", "Write transactions committed.", stats.commits);
    total("spirit_storage_fsyncs_total", "Flushes to disk (every commit in sync = always).",
          stats.syncs);
    total("spirit_storage_failed_commits_total", "Write transactions that failed.",
          stats.failed_commits);
    total("spirit_storage_events_written_total", "Events committed.", stats.events_written);
    total("spirit_storage_bytes_written_total", "Envelope bytes committed.", stats.bytes_written);
    out.push_back(one_gauge("spirit_storage_queued_bytes",
                            "Sealed bytes waiting for the writer thread.",
                            static_cast<double>(stats.queued_bytes)));
    out.push_back(one_gauge("spirit_storage_failed",
                            "1 once an I/O error made the store refuse writes (until restart).",
                            store.failure() ? 1 : 0));
    const storage::CommitMetrics commits = store.commit_metrics();
    out.push_back(histogram("spirit_storage_commit_duration_seconds",
                            "From a write transaction's begin to its commit returning.",
                            commits.commit_us, 1e-6));
    out.push_back(histogram("spirit_storage_fsync_duration_seconds",
                            "The call that makes commits durable: LMDB's commit in sync = always, "
                            "the periodic fsync in sync = periodic.",
                            commits.sync_us, 1e-6));
    out.push_back(histogram("spirit_storage_commit_batch_events",
                            "Events per committed transaction.", commits.batch_events, 1));
    if (auto space = store.space()) {
        auto bytes = [&](std::string name, std::string help, std::uint64_t v) {
            out.push_back(one_gauge(std::move(name), std::move(help), static_cast<double>(v)));
        };
        bytes("spirit_storage_map_bytes", "The store's map size: the most it may use.",
              space->map_bytes);
        bytes("spirit_storage_used_bytes", "Bytes of the data file up to LMDB's last page in use.",
              space->used_bytes);
        bytes("spirit_storage_map_free_bytes", "Map bytes not yet used (map minus used).",
              space->map_bytes - std::min(space->map_bytes, space->used_bytes));
        bytes("spirit_storage_file_bytes", "data.mdb's size on disk (preallocation included).",
              space->file_bytes);
        bytes("spirit_storage_disk_free_bytes",
              "Free bytes on the data dir's file system (for unprivileged processes).",
              space->disk_free_bytes);
        bytes("spirit_storage_disk_size_bytes", "Size of the data dir's file system.",
              space->disk_bytes);
    }
    if (auto quarantine = store.quarantine_streams()) {
        std::uint64_t events = 0;
        for (const storage::QuarantineSummary& q : *quarantine) events += q.count;
        out.push_back(one_gauge("spirit_quarantined_events",
                                "Events in this node's quarantine (removed from a copy's end).",
                                static_cast<double>(events)));
    }
}

}  // namespace

struct Metrics::StreamSeries {
    prometheus::Counter* published_events;
    prometheus::Counter* published_bytes;
    prometheus::Counter* delivered_events;
    prometheus::Counter* delivered_bytes;
};

Metrics::Metrics(const Config& config, const storage::Store& store)
    : config_(config), store_(store), registry_(std::make_unique<prometheus::Registry>()) {
    auto counters = [&](const char* name, const char* help) {
        return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
    };
    published_events_ =
        counters("spirit_publish_events_total",
                 "Events stored by publishes of this node's clients, as acknowledged.");
    published_bytes_ = counters("spirit_publish_bytes_total",
                                "Bytes of the Publish frames this node acknowledged.");
    delivered_events_ =
        counters("spirit_delivered_events_total", "Events this node sent to subscribers.");
    delivered_bytes_ =
        counters("spirit_delivered_bytes_total", "Envelope bytes this node sent to subscribers.");
    publish_errors_ =
        counters("spirit_publish_errors_total", "Publishes refused or failed, by error code.");
    refused_ = counters("spirit_connections_refused_total",
                        "Client connections refused or closed by the daemon, by reason.");
    auto& ack = prometheus::BuildHistogram()
                    .Name("spirit_publish_ack_duration_seconds")
                    .Help(
                        "From a publish's arrival to its acknowledgement, by redundancy "
                        "(immediate: acknowledged after its copies).")
                    .Register(*registry_);
    ack_eventual_ = &ack.Add({{"redundancy", "eventual"}}, ack_buckets);
    ack_immediate_ = &ack.Add({{"redundancy", "immediate"}}, ack_buckets);

    // Elections: every series exists from the start (0 alone), so that a
    // rate() or an alert sees the first one.
    const prometheus::Labels in_group{{"group", group}};
    pre_votes_started_ =
        &counters("spirit_pre_votes_started_total",
                  "Pre-vote rounds this node started (it had not heard its master for an "
                  "election timeout).")
             ->Add(in_group);
    elections_started_ = &counters("spirit_elections_started_total",
                                   "Elections this node started: it voted for itself in a new "
                                   "epoch and asked for votes.")
                              ->Add(in_group);
    elections_won_ =
        &counters("spirit_elections_won_total", "Elections this node won (MasterElected).")
             ->Add(in_group);
    master_changes_ =
        &counters("spirit_master_changes_total",
                  "Times a master of a newer epoch became known to this node (the first one "
                  "known after start not counted).")
             ->Add(in_group);
    auto* step_downs = counters("spirit_step_downs_total",
                                "Times this node gave up the master's role, by reason.");
    for (topology::StepDownCause cause : topology::step_down_causes) {
        SPIRIT_ASSERT(static_cast<std::size_t>(cause) == step_downs_.size());
        step_downs_.push_back(&step_downs->Add(
            {{"group", group}, {"reason", topology::step_down_cause_name(cause)}}));
    }
    failover_ = &prometheus::BuildHistogram()
                     .Name("spirit_failover_seconds")
                     .Help(
                         "From the last word of a lost master (or this node's own step-down) "
                         "to knowing the master of a newer epoch.")
                     .Register(*registry_)
                     .Add(in_group, failover_buckets);
}

Metrics::~Metrics() = default;

Metrics::StreamSeries& Metrics::series_of(std::string_view stream) {
    auto it = streams_.find(std::string(stream));
    if (it != streams_.end()) return *it->second;
    auto make = [&](const std::string& label) {
        const prometheus::Labels labels{{"stream", label}};
        return std::make_unique<StreamSeries>(
            StreamSeries{&published_events_->Add(labels), &published_bytes_->Add(labels),
                         &delivered_events_->Add(labels), &delivered_bytes_->Add(labels)});
    };
    if (streams_.size() >= config_.metrics.stream_labels_max) {
        if (!other_) other_ = make(std::string(other_label));
        return *other_;
    }
    return *streams_.emplace(std::string(stream), make(std::string(stream))).first->second;
}

void Metrics::publish_acked(std::string_view stream, std::uint64_t events, std::uint64_t bytes,
                            core::Redundancy redundancy, double seconds) {
    StreamSeries& s = series_of(stream);
    s.published_events->Increment(static_cast<double>(events));
    s.published_bytes->Increment(static_cast<double>(bytes));
    (redundancy == core::Redundancy::immediate ? ack_immediate_ : ack_eventual_)->Observe(seconds);
}

void Metrics::publish_failed(std::string_view code) {
    auto it = error_counters_.find(std::string(code));
    if (it == error_counters_.end()) {
        // Error codes are a fixed table (docs/protocol.md): a bounded set.
        it = error_counters_
                 .emplace(std::string(code), &publish_errors_->Add({{"code", std::string(code)}}))
                 .first;
    }
    it->second->Increment();
}

void Metrics::delivered(std::string_view stream, std::uint64_t events, std::uint64_t bytes) {
    StreamSeries& s = series_of(stream);
    s.delivered_events->Increment(static_cast<double>(events));
    s.delivered_bytes->Increment(static_cast<double>(bytes));
}

void Metrics::connection_refused(std::string_view reason) {
    auto it = refused_counters_.find(std::string(reason));
    if (it == refused_counters_.end()) {
        it = refused_counters_
                 .emplace(std::string(reason), &refused_->Add({{"reason", std::string(reason)}}))
                 .first;
    }
    it->second->Increment();
}

void Metrics::pre_vote_started() {
    pre_votes_started_->Increment();
}

void Metrics::election_started() {
    elections_started_->Increment();
}

void Metrics::election_won() {
    elections_won_->Increment();
}

void Metrics::stepped_down(topology::StepDownCause cause) {
    const auto index = static_cast<std::size_t>(cause);
    SPIRIT_ASSERT(index < step_downs_.size());
    step_downs_[index]->Increment();
}

void Metrics::master_changed(std::optional<double> failover_seconds) {
    master_changes_->Increment();
    if (failover_seconds) failover_->Observe(*failover_seconds);
}

void Metrics::set_sample(Sample sample) {
    std::lock_guard lock(sample_mutex_);
    sample_ = std::move(sample);
}

Readiness Metrics::readiness() const {
    std::lock_guard lock(sample_mutex_);
    return sample_.readiness;
}

std::string Metrics::render() const {
    std::vector<MetricFamily> families = registry_->Collect();
    Sample s;
    {
        std::lock_guard lock(sample_mutex_);
        s = sample_;
    }
    families.push_back(family("spirit_build_info", "The running spiritd's version.",
                              MetricType::Gauge, {gauge(1, {{"version", version_number()}})}));
    families.push_back(one_gauge("spirit_start_time_seconds",
                                 "When the process started, in seconds since the Unix epoch.",
                                 static_cast<double>(s.start_time_ms) / 1000.0));
    families.push_back(
        one_gauge("spirit_ready", "1 while /ready answers 200.", s.readiness.ready ? 1 : 0));
    families.push_back(one_gauge("spirit_connections", "Client connections open.",
                                 static_cast<double>(s.connections)));
    families.push_back(one_gauge("spirit_subscriptions", "Subscriptions open.",
                                 static_cast<double>(s.subscriptions)));
    families.push_back(one_gauge("spirit_outbox_events",
                                 "Publishes a slave holds for a master it cannot reach (events).",
                                 static_cast<double>(s.outbox_events)));
    families.push_back(one_gauge("spirit_replication_errors",
                                 "Streams whose replication is refused or repairing now.",
                                 static_cast<double>(s.replication_errors)));
    add_cluster_families(s, families);
    families.push_back(consumer_lag_family(s.consumers, config_.metrics.consumer_labels_max));
    add_storage_families(store_, families);
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, families);
    return text.str();
}

}  // namespace spirit::daemon::ops
