// tests/sim/checkers.h: DESIGN.md's invariants, checked while a run goes.
// Each checker is a function that returns the violations it found, with a
// message a reader can follow. Some look at the nodes after every step
// (every input a node takes, or every tick); others at the moments that
// matter (an ack, the end of a completion, a quarantine); the history they
// need (every master of every epoch, every ack, every event a consumer saw)
// is recorded here, since the nodes forget.
//
//   one-master-per-epoch   no two nodes master one epoch, over all time; no
//                          view holds a conflict (View::conflicts)
//   acked-imm-kept         a master that completed imm holds every imm write
//                          acked in its epoch or before at its acked seq and
//                          hash; at the end every live data node holds every
//                          one; no seq acked with two hashes, no id at two seqs
//   prefix-of-master       a slave that confirmed its master's epoch holds a
//                          prefix of the master's copy
//   removed-in-quarantine  an event that leaves a node's durable copy is in
//                          that node's quarantine
//   exposed-not-quarantined  no imm event any consumer saw is quarantined
//   stale-master-silent    a master acks nothing once a higher epoch's master
//                          has existed for 2 election timeouts + slack (in
//                          the stale node's own ticks)
//   epochs-monotonic       a node's epoch never goes down in one life, and a
//                          restart starts at or above its durable votes
//   valid-topology-events  every `$topology` event passes check_event
//   role-agrees-with-view  no node follows a master its view says stepped down
//   master-once-elected-durable  a node is master only once its MasterElected
//                          is durable on its own disk
//   liveness, converged    (World::run, the final phase)
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/model.h"

namespace spirit::sim {

class World;
class Node;

struct Violation {
    std::string invariant;
    std::string message;
    std::uint64_t tick = 0;
};

struct AckRecord {
    std::size_t stream = 0;
    Seq seq;
    std::uint64_t id = 0;
    std::uint64_t hash = 0;
    Epoch epoch;
    std::uint64_t tick = 0;
    std::size_t node = 0;
};

class Checkers {
 public:
    explicit Checkers(World& world);

    // After every input a node took.
    std::vector<Violation> node_stepped(const Node& node);
    // A node (re)started: its Elector was built from its durable events.
    std::vector<Violation> node_started(const Node& node);
    // After every tick of the world.
    std::vector<Violation> tick();
    // A master acknowledged a publish.
    std::vector<Violation> acked(const AckRecord& ack);
    // A master finished completing `stream` in its epoch.
    std::vector<Violation> completed(const Node& node, std::size_t stream);
    // `node` let its consumers see `entry` at `seq`.
    std::vector<Violation> exposed(const Node& node, std::size_t stream, Seq seq,
                                   const Entry& entry);
    // A `$topology` event a node received did not pass check_event.
    std::vector<Violation> invalid_event(const Node& node, const std::string& why);
    // At the end: every live data node holds every acked imm write.
    std::vector<Violation> final_copies();

    const std::vector<AckRecord>& acks() const { return acks_; }
    std::size_t masters() const { return masters_.size(); }
    // The slack, in a stale master's own ticks, checker 6 allows.
    std::uint64_t stale_ticks_max() const;
    // The most ticks a stale master acked after a higher epoch's master existed.
    std::uint64_t stale_ack_ticks_max() const { return stale_ack_ticks_max_; }

 private:
    struct Shadow {
        std::uint64_t life = 0;
        Epoch epoch{0};
        std::uint64_t version = 0;
        std::array<std::vector<std::uint64_t>, stream_count> hashes;  // durable copy's
        std::array<std::size_t, stream_count> quarantined{};          // entries seen
    };
    void check_removed(const Node& node, Shadow& shadow, std::vector<Violation>& out);
    void check_elected_durable(const Node& node, std::vector<Violation>& out);
    void check_prefixes(std::vector<Violation>& out);
    // Every imm write acked in an epoch up to `epochs_max` is on `node`'s durable copy.
    std::vector<Violation> holds_acked(const Node& node, Epoch epochs_max, const char* when);
    void quarantined(const Node& node, std::size_t stream, const Quarantined& q,
                     std::vector<Violation>& out);
    std::string where(const Node& node) const;

    World& world_;
    std::vector<AckRecord> acks_;
    std::map<Seq, AckRecord> imm_acked_;                        // the first ack of each imm seq
    std::map<std::uint64_t, AckRecord> imm_by_id_;              // and of each imm id
    std::map<Epoch, std::size_t> masters_;                      // over all time
    std::map<Epoch, std::vector<std::uint64_t>> master_since_;  // nodes' lived ticks then
    std::set<Epoch> conflicts_reported_;
    std::set<std::string> invalid_reported_;
    std::map<std::pair<Seq, std::uint64_t>, std::size_t> exposed_imm_;  // -> a node that showed it
    std::map<std::pair<Seq, std::uint64_t>, std::size_t> quarantined_imm_;
    std::vector<Shadow> shadows_;
    std::uint64_t stale_ack_ticks_max_ = 0;
};

}  // namespace spirit::sim
