// topology/view.h: the state `$topology` describes, as a pure fold over
// the set of its events: who was elected master of which epoch, who
// stepped down, the highest vote of every node, which streams exist with
// which policy, which were completed and which suffixes quarantined.
//
// Every aggregate is a maximum or a union, so the same set of events gives
// the same view in any order of arrival and with any duplicates (a property
// test checks describe() over permutations). Nodes that hold the same
// events therefore see the same masters.
//
// Events reach the view verified (signature and chain checked by the
// daemon) and valid (check_event below); the view trusts them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/topology_event.h"
#include "topology/members.h"
#include "topology/role_table.h"

namespace spirit::topology {

// The replica group every stream belongs to until placement exists.
inline constexpr const char* default_group = "default";

// Why `event` may not be applied by a node with `members`, or nullopt if it
// may: an author that is not a member, a vote for a node that may not stand
// in that epoch, an election by a node that may not stand in it or without
// a majority of voters, a group other than the default. A step-down by a
// node that did not master that epoch is not refused (that needs the other
// events): the view ignores it. The reason names the event ("node-b/7: ...").
std::optional<std::string> check_event(const core::TopologyEvent& event, const Members& members);

class View {
 public:
    // Adds one event; an event already held (same key) changes nothing.
    // Returns false for such a duplicate.
    bool add(const core::TopologyEvent& event);

    std::size_t size() const { return keys_.size(); }
    bool holds(const core::TopologyKey& key) const { return keys_.contains(key); }

    // The role of the group: the master of the highest epoch anyone was
    // elected in (none if that master stepped down). Epoch{0}: none yet.
    Role role() const;
    std::optional<core::NodeId> master_of(core::Epoch epoch) const;
    bool stepped_down(core::Epoch epoch) const;
    // The highest epoch `node` voted in (over all its instances); Epoch{0}: none.
    core::Epoch voted_by(const core::NodeId& node) const;
    // The highest epoch any event names.
    core::Epoch highest_epoch() const { return highest_epoch_; }
    // Epochs two different nodes claim to have mastered (never in a correct
    // cluster; the simulator's checker and `spirit topology` report them).
    const std::set<core::Epoch>& conflicts() const { return conflicts_; }
    // Starts of an author's instance: the highest incarnation seen.
    std::uint64_t incarnation(const core::TopologyAuthor& author) const;

    struct Start {
        std::uint64_t incarnation = 0;
        bool witness = false;
    };
    const std::map<core::TopologyAuthor, Start>& starts() const { return starts_; }
    // For each stream, the highest (epoch, seq) it was completed at.
    const std::map<std::string, std::pair<core::Epoch, core::Seq>>& completions() const {
        return completions_;
    }
    struct Quarantine {
        core::NodeId node;
        std::string stream;
        core::Epoch epoch;
        core::Seq after_seq;
        std::uint64_t count = 0;
        friend auto operator<=>(const Quarantine&, const Quarantine&) = default;
    };
    const std::set<Quarantine>& quarantines() const { return quarantines_; }

    // A stream as `$topology` says: of its lifecycle events (created,
    // deleted, policy changed) and completions, each by the master of its
    // epoch, the one with the highest (epoch, author seq) decides whether
    // it exists (deleted: no); `policy` is the latest created or changed
    // one since its last delete (nullopt: only completions name it).
    // Events by a node that did not master their epoch are ignored.
    struct StreamState {
        bool exists = false;
        core::Epoch epoch;      // of the deciding event
        std::uint64_t seq = 0;  // its seq in its author's sub-log
        std::optional<core::StreamPolicy> policy;
        friend bool operator==(const StreamState&, const StreamState&) = default;
    };
    std::optional<StreamState> stream(const std::string& name) const;
    // Every stream `$topology` names, by name.
    std::map<std::string, StreamState> streams() const;

    // Deterministic text of the whole view (tests, scenario output).
    std::string describe() const;

 private:
    std::set<core::TopologyKey> keys_;
    std::map<core::Epoch, core::NodeId> masters_;
    std::set<std::pair<core::Epoch, core::NodeId>> stepped_down_;  // by whom
    std::set<core::Epoch> conflicts_;
    std::map<core::NodeId, core::Epoch> votes_;
    core::Epoch highest_epoch_{0};
    std::map<core::TopologyAuthor, Start> starts_;
    std::map<std::string, std::pair<core::Epoch, core::Seq>> completions_;
    std::set<Quarantine> quarantines_;
    // Every lifecycle event and completion of each stream, by (epoch, author
    // seq): folded when asked, so the master of an epoch may be learnt later.
    struct Change {
        core::Epoch epoch;
        std::uint64_t seq = 0;
        core::TopologyAuthor author;
        enum class Kind : std::uint8_t { completed, created, policy, deleted } kind;
        core::StreamPolicy policy;  // created, policy
        // One event per key: (epoch, seq, author) orders them all.
        friend bool operator<(const Change& l, const Change& r) {
            return std::tie(l.epoch, l.seq, l.author) < std::tie(r.epoch, r.seq, r.author);
        }
    };
    std::map<std::string, std::set<Change>> changes_;
};

}  // namespace spirit::topology
