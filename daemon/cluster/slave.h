// daemon/cluster/slave.h: a node's part while another node masters its
// group in an epoch: it keeps its copies equal to the master's.
//
// - It reports where each copy ends (Positions: confirmed epoch, seq, hash,
//   policy) when the link to the master comes up and when the master or
//   epoch changes.
// - It checks every envelope the master sends (Replicate) before storing it
//   (storage checks each chain link), commits through its group commit and
//   acks its durable position with the hash there and its confirmed epoch.
//   An empty Replicate asks it to confirm the epoch where its copy ends.
//   A stream keeps the policy it was recorded with; a Replicate that names
//   another is logged as a warning.
// - A Replicate that does not continue the copy, or holds an envelope that
//   does not verify, is refused (ReplicaRefused) with where the copy can
//   resume; later frames of that stream are dropped until one continues the
//   copy. Refusals live as long as the link: a new link starts clean.
// - It answers the master's probes with its hashes (the divergence search),
//   cuts its copy after the common seq when told (Truncate: the divergent
//   suffix goes to quarantine), confirms the epoch there and reports it. A
//   read of its copy that fails meanwhile closes the link (both sides start
//   over): it never answers "no such seq" for a seq it may hold.
// - It serves Fetch: a new master completing a stream reads the suffix it
//   lacks from the highest copy.
//
// The Cluster checks the epoch and sender of every message before it gets
// here. One instance per (epoch, master); loop thread only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/node_id.h"
#include "core/protocol.h"
#include "core/topology_event.h"
#include "daemon/config.h"
#include "net/loop.h"
#include "storage/store.h"
#include "topology/completion.h"

namespace spirit::daemon {

class PeerLinks;
class Visibility;

class Slave {
 public:
    struct Context {
        const Config& config;
        net::Loop& loop;
        storage::Store& store;
        PeerLinks& links;
        Visibility& visibility;
        // Whether this node's copies have caught up since its data dir was made.
        std::function<topology::CopyFreshness()> freshness;
        // Appends an event to this node's sub-log of `$topology`.
        std::function<void(core::TopologyBody)> record;
    };
    Slave(Context context, core::Epoch epoch, core::NodeId master);
    ~Slave();
    Slave(const Slave&) = delete;
    Slave& operator=(const Slave&) = delete;

    core::Epoch epoch() const { return epoch_; }
    const core::NodeId& master() const { return master_; }

    // The link to the master is up: report every copy.
    void master_linked();
    // The link to the master closed: refusals end with it.
    void master_unlinked();

    void on_replicate(const core::protocol::Replicate& replicate);
    void on_probe(const core::protocol::Probe& probe);
    void on_truncate(const core::protocol::Truncate& truncate);
    void on_fetch(const core::protocol::Fetch& fetch);
    void on_visible(const core::protocol::Visible& visible);
    // Retries a cut that had to wait for commits in flight, and reports
    // positions again after a Replicate met such commits.
    void tick();

    // This copy of `stream` now records `policy` (`$topology` said so).
    void policy_changed(const std::string& stream, const core::StreamPolicy& policy);
    // `stream` was deleted here (`$topology` said so): what it knew of it goes.
    void forget(const std::string& stream);

    // Streams this node refused on the current link, with why.
    std::vector<core::protocol::ReplicationError> errors() const;

 private:
    struct Refusal {
        core::Seq resume_seq;
        core::Digest resume_hash;
        std::string why;
    };
    void send_positions();
    // Warns (once per link and policy) when the master sends `stream` with
    // another policy than this copy's record, which is kept.
    void check_policy(const std::string& stream, const core::StreamPolicy& sent);
    void applied(const std::string& stream, core::Result<storage::AppendResult> result);
    void refuse(const std::string& stream, core::Seq seq, const core::Error& why);
    void confirm(const std::string& stream, const core::StreamPolicy& policy, core::Seq seq,
                 const core::Digest& hash);
    void ack(const std::string& stream, core::Seq seq, const core::Digest& hash);
    // The copy holds `stream` durably up to `seq`, in the master's chain:
    // consumers here may see it, an immediate stream no further than the
    // master declared (what `acks` copies hold).
    void durable(const std::string& stream, core::Seq seq);
    void show(const std::string& stream);
    // What the master said: its history (Replicate, Truncate) and the
    // visible seq of an immediate stream (Replicate, Visible).
    void heard(const std::string& stream, core::Seq history, std::optional<core::Seq> visible);
    // The confirmed epoch of this copy of `stream` once it ends at `seq`:
    // this epoch from the master's history on, else the one it had.
    core::Epoch confirmed_at(const std::string& stream, core::Seq seq) const;
    bool immediate(const std::string& stream) const;
    void cut(const core::protocol::Truncate& truncate);
    void remove(const std::string& stream);
    bool send(const core::protocol::Message& message);
    // Logs a read of this copy that failed while answering the master
    // (`what`), and closes the link: both sides start over.
    void read_failed(const std::string& stream, std::string_view what, const core::Error& why);
    // Where the next Replicate of a stream must chain on: what was reported
    // in Positions, then the end of each frame accepted since.
    struct Next {
        core::Seq seq;
        core::Digest hash;
    };

    Context c_;
    core::Epoch epoch_;
    core::NodeId master_;
    std::map<std::string, Next, std::less<>> next_;
    std::map<std::string, Refusal, std::less<>> refused_;
    // Each copy's recorded policy, and the last other one a master sent.
    struct Policies {
        core::StreamPolicy recorded;
        std::optional<core::StreamPolicy> warned;
    };
    std::map<std::string, Policies, std::less<>> policies_;
    // Per stream, as the master said: where its copy ended when it completed
    // the stream (the copy confirms this epoch from there on), and what
    // consumers may see; and how far this copy holds the master's chain.
    struct Said {
        core::Seq history;
        core::Seq visible;
        core::Seq durable;
    };
    std::map<std::string, Said, std::less<>> said_;
    std::vector<core::protocol::Truncate> cuts_waiting_;
    // A Replicate met commits in flight: tick() reports positions again.
    bool positions_due_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace spirit::daemon
