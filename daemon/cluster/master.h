// daemon/cluster/master.h: a node's part while it masters its group in an
// epoch (docs/replication.md). One instance per epoch; loop thread only.
//
// 1. Completion. Before it orders anything, the master gathers every copy's
//    position (Positions) from a majority of copies that are not fresh (and,
//    for a bounded time, from every peer it can reach), and adopts for each
//    stream the highest by (confirmed epoch, seq) (topology/completion.h):
//    it checks that its own copy is a prefix of that copy (a probe, then a
//    k-ary search if not; a divergent suffix of its own goes to
//    quarantine), fetches the missing suffix with every hash checked, and
//    confirms the epoch. A master whose store was wiped, or lost its
//    unsynced tail, so recovers its streams from the replicas.
// 2. Serving. Every replica's reported position is verified against this
//    master's chain before it counts (topology/tracker.h); a copy that
//    differs is searched for its last common seq and told to cut there
//    (into quarantine); verified copies are pushed to from their position,
//    pipelined within cluster.replication_window_bytes, and an empty
//    Replicate aligns a copy that has everything to the new epoch. A read
//    of its own copy that fails while it checks or searches a replica's
//    copy closes that link (both sides start over); it never guesses.
// 3. Writes. A stream takes writes once completed; an immediate stream
//    with history once `acks` copies have confirmed this epoch. Immediate
//    publishes are acknowledged once `acks` verified copies hold them; the
//    same watermark decides what consumers may see (daemon/visibility.h).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/node_id.h"
#include "core/protocol.h"
#include "core/topology_event.h"
#include "daemon/config.h"
#include "net/loop.h"
#include "storage/store.h"
#include "topology/completion.h"
#include "topology/divergence.h"
#include "topology/tracker.h"
#include "topology/view.h"

namespace spirit::daemon {

class PeerLinks;
class Visibility;

class Master {
 public:
    struct Context {
        const Config& config;
        net::Loop& loop;
        storage::Store& store;
        PeerLinks& links;
        Visibility& visibility;
        core::NodeId self;
        std::vector<core::NodeId> replicas;  // the group's other data nodes
        topology::CopyFreshness freshness;   // of this node's own copies
        std::function<void()> caught_up;     // its own copies hold everything now
        // Appends an event to this node's sub-log of `$topology`.
        std::function<void(core::TopologyBody)> record;
        // Sends `peer` a Heartbeat now (it carries whether its copies caught up).
        std::function<void(const core::NodeId&)> announce;
        // Whether this node holds what a majority of voters reported holding
        // of `$topology` in this epoch: completion adopts nothing before
        // (topology/spread.h), so it knows every acknowledged delete.
        std::function<bool()> topology_current;
        // What `$topology` says of a stream (topology/view.h).
        std::function<std::optional<topology::View::StreamState>(const std::string&)> stream_state;
    };
    Master(Context context, core::Epoch epoch);
    ~Master();
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;

    core::Epoch epoch() const { return epoch_; }
    // Reads its own copies and starts completing.
    void start();
    // Fails everything that waits on this master with `why` (it stepped
    // down, or the daemon stops). Call before destroying it.
    void abandon(const core::Error& why);
    // Every heartbeat interval: the gather's grace, deadlines.
    void tick();
    // `$topology` grew: a gather that waited for it may go on.
    void topology_advanced();
    // Gathering positions: it has adopted nothing yet.
    bool gathering() const { return phase_ == Phase::gathering; }
    // `stream` was deleted here: everything it tracks of it goes, and what
    // waits on it fails with `why`.
    void forget(const std::string& stream, const core::Error& why);
    // This copy of `stream` now records `policy`: frames carry it from now on.
    void policy_changed(const std::string& stream, const core::StreamPolicy& policy);

    // Peers (the Cluster checked the epoch).
    void link_up(const core::NodeId& peer);
    void link_down(const core::NodeId& peer);
    void on_positions(const core::NodeId& peer, const core::protocol::Positions& positions);
    void on_ack(const core::NodeId& peer, const core::protocol::ReplicaAck& ack);
    void on_refused(const core::NodeId& peer, const core::protocol::ReplicaRefused& refused);
    void on_probe_reply(const core::NodeId& peer, const core::protocol::ProbeReply& reply);
    void on_fetch_reply(const core::NodeId& peer, const core::protocol::FetchReply& reply);
    void on_writable(const core::NodeId& peer);

    // The write path.
    bool writable(const std::string& stream) const;
    // Calls `ready` once `stream` takes writes in this epoch (at once if it
    // does), or with unavailable after cluster.ack_timeout_ms.
    using Ready = std::function<void(core::Result<void>)>;
    void when_writable(const std::string& stream, Ready ready);
    // This node sealed `sealed` in immediate `stream` and is committing it:
    // the replicas are sent it now, from memory, in parallel with the commit
    // (its own copy counts once committed() says so). False if it does not
    // continue what this master sealed or holds: the store reset the
    // stream's head after a failed commit. The master then takes no more
    // writes and own_commit_failed() says why: the Cluster steps it down.
    void sealed(const std::string& stream, storage::Sealed sealed);
    const std::optional<std::string>& own_commit_failed() const { return own_commit_failed_; }
    // This node committed `stream` up to (last, hash).
    void committed(const std::string& stream, const core::StreamPolicy& policy, core::Seq last,
                   const core::Digest& hash);
    // Calls `done` with the nodes holding `stream` up to `seq` once `copies`
    // verified copies (this one included) do, or with errc::timeout after
    // cluster.ack_timeout_ms saying how many were reached.
    using CopiesDone = std::function<void(core::Result<std::vector<core::NodeId>>)>;
    void await_copies(const std::string& stream, core::Seq seq, std::size_t copies,
                      CopiesDone done);

    // Status.
    bool serving() const { return phase_ == Phase::serving; }
    std::string state() const;
    bool caught_up(const core::NodeId& peer) const;
    std::uint64_t lag_events(const core::NodeId& peer) const;
    // Every replica's copy of every stream this master tracks: its
    // verified last seq, its confirmed epoch, its lag and its state.
    std::vector<core::protocol::TopologyPosition> replica_positions() const;
    std::vector<core::protocol::ReplicationError> errors() const;

 private:
    enum class Phase { gathering, adopting, serving };
    struct PeerReport {
        bool fresh = false;
        bool complete = false;
        std::vector<core::protocol::CopyPosition> copies;
    };
    // One stream being completed from another copy.
    struct Adoption {
        enum class Step { probe, search, cut, fetch, confirm };
        topology::Choice choice;
        Step step = Step::probe;
        topology::Position own;
        core::Seq own_first{1};
        std::optional<topology::DivergenceSearch> search;
    };
    struct Waiter {
        std::uint64_t deadline_ms;
        Ready ready;
    };
    struct Awaiter {
        std::size_t copies;
        std::uint64_t deadline_ms;
        CopiesDone done;
    };
    // A replica's refusals of a stream on the current link.
    struct Refusals {
        core::Seq seq{0};  // refused last at
        int count = 0;     // times in a row at `seq`
        // Stopped after refusals_max: when to start over, and from where.
        std::optional<std::uint64_t> retry_ms;
        topology::Position resume;
    };
    struct BuiltFrame {
        core::Seq first;
        core::Seq last;
        core::Digest last_hash;
        core::Bytes bytes;
    };

    // Completion (master_completion.cc).
    void restart_completion(std::string_view why);
    void report_own();
    void check_gathered();
    void adopt(const topology::Choice& choice);
    void probe_source(Adoption& adoption, std::vector<core::Seq> seqs);
    void adoption_probed(Adoption& adoption, const core::protocol::ProbeReply& reply);
    void cut_own(Adoption& adoption, core::Seq common);
    void fetch(Adoption& adoption);
    void confirm_own(const std::string& stream);
    void adopted(const std::string& stream);
    void finish_completion();

    // Serving (master.cc).
    void load_own(const std::string& stream);
    void verify_peer(const core::NodeId& peer);
    // Checks `peer`'s claim against this copy. False if this copy could not
    // be read: the link to `peer` is then closing (read_failed).
    bool check_claim(const core::NodeId& peer, const std::string& stream,
                     const topology::Position& claim, topology::Tracker::Claim kind);
    // Logs a read of this copy that failed while checking or searching
    // `peer`'s copy, and closes the link: both sides start over.
    void read_failed(const core::NodeId& peer, const std::string& stream, std::string_view what,
                     const core::Error& why);
    void verdict(const core::NodeId& peer, const std::string& stream, topology::Verdict verdict);
    void tracker_probed(const core::NodeId& peer, const core::protocol::ProbeReply& reply);
    void pump(const core::NodeId& peer);
    bool pump_stream(const core::NodeId& peer, const std::string& stream);
    const BuiltFrame* build_frame(const core::NodeId& peer, const std::string& stream,
                                  const topology::SendRange& range);
    // Lets the tracker send the sealed batches that continue its sendable
    // head without a gap, and sends them.
    void extend_sendable(const std::string& stream);
    // Adds the sealed envelopes of `stream` from `from` on (none if not
    // sealed), within the limits, and moves `last` and `last_hash` on.
    void add_sealed(core::protocol::ReplicateFrameBuilder& frame, const std::string& stream,
                    core::Seq from, core::Seq to, std::size_t events_max, std::size_t bytes_max,
                    core::Seq& last, core::Digest& last_hash) const;
    void copies_changed(const std::string& stream);
    // Forgets the frame built for `stream` (it names an old policy, or none).
    void drop_frame(const std::string& stream);
    void resolve_waiters(const std::string& stream);
    void expire(std::uint64_t now);
    // Starts over the streams stopped after refusals_max whose wait is over.
    void retry_refused(std::uint64_t now);
    const core::StreamPolicy& policy_of(const std::string& stream);
    core::Seq history_of(const std::string& stream) const;
    // This copy's hash at `seq` (nullopt: it holds no such seq), or why it
    // could not be read.
    core::Result<std::optional<core::Digest>> hash_here(const std::string& stream,
                                                        core::Seq seq) const;
    std::size_t group_size() const { return c_.replicas.size() + 1; }
    // The replicas whose links are up (a witness is a peer, not a replica).
    std::vector<core::NodeId> linked_replicas() const;

    Context c_;
    core::Epoch epoch_;
    Phase phase_ = Phase::gathering;
    topology::Tracker tracker_;
    std::optional<topology::Completion> completion_;
    std::uint64_t completion_generation_ = 0;
    std::map<core::NodeId, PeerReport> reports_;
    std::map<std::string, Adoption> adoptions_;
    std::map<std::string, std::string> failed_;  // streams completion could not adopt: why
    std::map<std::string, core::StreamPolicy, std::less<>> policies_;
    std::set<std::string, std::less<>> awaiting_confirmation_;
    // Where this copy ended when the stream completed in this epoch (none:
    // the stream is new in it). A replica confirms the epoch only once it
    // holds that much (Replicate and Truncate carry it).
    std::map<std::string, core::Seq, std::less<>> history_;
    // The visible seq of each immediate stream last declared to the replicas.
    std::map<std::string, core::Seq, std::less<>> declared_;
    std::map<std::string, std::vector<Waiter>> waiters_;
    std::map<std::string, std::multimap<core::Seq, Awaiter>> awaiters_;
    std::map<std::pair<core::NodeId, std::string>, Refusals> refusals_;
    // Sealed, not committed here yet (immediate streams), in seq order;
    // sent once they continue the tracker's sendable head, dropped as
    // commits land.
    std::map<std::string, std::deque<storage::Sealed>, std::less<>> sealed_;
    std::optional<std::string> own_commit_failed_;
    std::map<std::string, BuiltFrame> frames_;
    BuiltFrame align_frame_;
    std::uint64_t frames_bytes_ = 0;
    std::uint64_t started_ms_ = 0;
    // When the adoption last moved (a reply, a commit): a probe or fetch
    // that got no answer (its link came back meanwhile, say) starts the
    // completion over after adoption_patience_ms() instead of waiting forever.
    std::uint64_t adoption_moved_ms_ = 0;
    std::uint64_t adoption_patience_ms() const;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace spirit::daemon
