// daemon/cluster/topology_log.h: this node's copy of `$topology`: every
// member's sub-log, sealed and verified, stored as the events of the local
// system stream `$topology` (one envelope per topology event, its payload
// the sealed bytes, in the order this node stored them), so that it can be
// read and subscribed to like any stream. It is never pushed by a master:
// nodes exchange what the other lacks (anti-entropy on heartbeats).
//
// - Own events (the Elector's Ready) are sealed on this node's chain with
//   its identity key and appended one batch at a time; a batch is durable
//   before the next is appended (so the sub-log has no gap after a crash),
//   and a failed append is retried.
// - A peer's events are refused, with the reason logged and counted, unless
//   they continue what this node holds of their author (seq and previous
//   hash), verify with the author's configured public key, and keep the
//   election rules (topology::check_event). Accepted ones are appended and
//   handed to the Elector once durable.
//
// The instance of this node's sub-log is drawn when the data dir is new
// and recorded in the node database, so a wiped node writes a new sub-log.
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/identity.h"
#include "core/protocol.h"
#include "core/topology_codec.h"
#include "core/topology_event.h"
#include "storage/store.h"
#include "topology/members.h"

namespace spirit::daemon {

inline constexpr std::string_view topology_stream = "$topology";

class TopologyLog {
 public:
    struct Context {
        storage::Store& store;
        const core::Identity& identity;
        core::NodeId self;
        topology::Members members;
        std::map<core::NodeId, core::PublicKey> keys;  // every member's
        // `$topology` holds events up to `last` now (its subscribers may read them).
        std::function<void(core::Seq last)> stored;
    };
    explicit TopologyLog(Context context);
    ~TopologyLog();
    TopologyLog(const TopologyLog&) = delete;
    TopologyLog& operator=(const TopologyLog&) = delete;

    // Reads (or draws and records) this node's instance and every stored
    // event, each checked again. Returns the events for the Elector.
    // Errors name the event and what is wrong with it.
    [[nodiscard]] core::Result<std::vector<core::TopologyEvent>> load();
    const core::TopologyAuthor& author() const { return author_; }

    // Seals and stores this node's next events (in order: their seqs follow
    // what was sealed before); `durable` runs once they are committed.
    void append_own(std::vector<core::TopologyEvent> events, std::function<void()> durable);

    // A peer's sealed events, each author's in seq order. `learned` runs
    // for each accepted event once it is durable here.
    using Learned = std::function<void(const core::TopologyEvent&)>;
    void accept(const core::NodeId& from, const std::vector<core::ByteView>& sealed,
                const Learned& learned);

    // What this node holds of every author (durable).
    std::vector<core::protocol::TopologyVersion> versions() const;
    // The same with the timestamp of each author's last event, by author.
    std::vector<core::protocol::TopologySubLog> sublogs() const;
    // The sealed events a node holding `theirs` lacks, at most `bytes_max`
    // of them (at least one when any is lacking).
    std::vector<core::ByteView> missing_for(
        const std::vector<core::protocol::TopologyVersion>& theirs, std::size_t bytes_max) const;

    // Retries a failed append of own events.
    void tick();

    std::uint64_t events() const { return events_; }
    std::uint64_t refused() const { return refused_; }
    const std::string& last_refusal() const { return last_refusal_; }

 private:
    struct AuthorLog {
        std::vector<core::Bytes> sealed;  // seq 1.. durable here
        core::Digest last_hash;           // of the last durable one
        std::uint64_t accepted = 0;       // appended (durable or in flight)
        core::Digest accepted_hash;
    };
    struct Batch {
        std::vector<core::TopologyEvent> events;
        std::vector<core::Bytes> sealed;
        std::vector<core::Digest> hashes;
        std::function<void()> durable;
    };

    [[nodiscard]] core::Result<void> load_instance();
    void refuse(const core::NodeId& from, const std::string& why);
    std::optional<std::string> check(const core::SealedTopologyEvent& e) const;
    void start_append();
    [[nodiscard]] core::Result<void> store_events(const std::vector<core::Bytes>& sealed,
                                                  const std::vector<core::Digest>& hashes,
                                                  std::function<void(bool)> done);

    Context c_;
    core::TopologyAuthor author_;
    std::map<core::TopologyAuthor, AuthorLog> logs_;
    std::deque<Batch> own_;  // own batches not yet durable; the front is in flight
    bool own_in_flight_ = false;
    bool retry_ = false;
    core::Digest sealed_hash_;  // this node's last sealed event
    std::uint64_t events_ = 0;
    std::uint64_t refused_ = 0;
    std::string last_refusal_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace spirit::daemon
