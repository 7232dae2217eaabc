// tests/sim/world.h: a whole simulated cluster in one process, driven by one
// seed. The World holds the nodes (node.h), the network (network.h), the
// clients, the fault driver (faults.h) and the checkers (checkers.h), and
// one topology::Prng from which every random choice is drawn, in an order
// fixed by the code: the same seed gives the same run, byte for byte.
//
// A step is one tick of the world clock: faults act; every node that is up
// and not paused ticks (as many times as its clock's rate says); clients
// publish; then messages and disk writes that are due are delivered and
// applied, in (due tick, order) until nothing more is due; then the
// checkers look. run() plays a safety phase with faults and a liveness
// phase that heals them and requires a master, completed streams and
// identical copies in bounded time.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/checkers.h"
#include "tests/sim/network.h"
#include "tests/sim/node.h"
#include "tests/sim/options.h"
#include "tests/sim/trace.h"
#include "topology/members.h"
#include "topology/prng.h"

namespace spirit::sim {

class FaultDriver;

struct Outcome {
    std::uint64_t seed = 0;
    std::vector<Violation> violations;
    std::vector<std::string> last_trace;  // the trace up to the first violation
    std::uint64_t ticks = 0;
    std::uint64_t digest = 0;                     // of the whole trace: equal runs, equal digests
    std::map<std::string, std::uint64_t> faults;  // fault kind -> times it happened
    std::uint64_t acks = 0;
    std::uint64_t masters = 0;
    std::uint64_t heal_to_master_ticks = 0;  // from the heal to acks in both streams
    std::uint64_t stale_ack_ticks_max = 0;   // see Checkers::stale_ack_ticks_max
    bool ok() const { return violations.empty(); }
};

class World {
 public:
    explicit World(WorldOptions options);
    ~World();
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    // Both phases, then the final checks.
    Outcome run();
    Outcome outcome() const;

    // Scripted runs drive these directly.
    void step();
    void run_ticks(std::uint64_t ticks);
    // Steps until `done` holds (true) or `ticks_max` ticks passed (false).
    bool run_until(const std::function<bool()>& done, std::uint64_t ticks_max);
    void crash(std::size_t node);
    void restart(std::size_t node);
    void pause(std::size_t node);
    void resume(std::size_t node);
    void jump(std::size_t node, std::uint64_t ticks);  // a burst of ticks
    void set_rate(std::size_t node, std::uint64_t permille) { rates_[node] = permille; }
    void cut(std::size_t from, std::size_t to) { network_.set_cut(from, to, true); }
    void isolate(std::size_t node);
    void heal() { network_.heal(); }
    // An operator's transfer: `node` stands at once (forced).
    void stand(std::size_t node);
    void set_publishing(bool on) { publishing_ = on; }
    std::uint64_t new_id();
    // A client's publish to `node` with `id`; false if refused at once.
    bool publish(std::size_t node, std::size_t stream, std::uint64_t id);
    bool acked(std::uint64_t id) const { return acked_ids_.contains(id); }
    // The node that masters the highest epoch and serves, if any.
    std::optional<std::size_t> serving_master() const;

    // Services for nodes and checkers.
    std::uint64_t now() const { return now_; }
    topology::Prng& prng() { return prng_; }
    const WorldOptions& options() const { return options_; }
    Network& network() { return network_; }
    const Trace& trace() const { return trace_; }
    Trace& trace() { return trace_; }
    void trace(const std::string& text) { trace_.line(now_, text); }
    const topology::Members& members() const { return members_; }
    const std::vector<std::size_t>& data_nodes() const { return data_nodes_; }
    std::size_t index_of(const core::NodeId& id) const;
    Node& node(std::size_t index) { return *nodes_[index]; }
    const Node& node(std::size_t index) const { return *nodes_[index]; }
    std::size_t size() const { return nodes_.size(); }
    void send(std::size_t from, std::size_t to, Message message);
    std::uint64_t disk_delay();
    void set_disk(std::uint64_t delay_max, std::uint64_t slow_permille);
    // Ticks from the heal within which the liveness phase wants a master.
    std::uint64_t liveness_master_ticks() const;
    std::string states() const;
    Checkers& checkers() { return checkers_; }
    void report(std::vector<Violation> violations);
    bool stopped() const { return stopped_; }
    void record_ack(const AckRecord& ack);
    void count(const std::string& fault) { ++fault_counts_[fault]; }

 private:
    void drain();
    void deliver(Envelope envelope);
    void tick_nodes();
    void tick_clients();
    void client_publish(std::size_t stream, std::uint64_t id);
    void liveness();
    bool settled() const;
    bool converged() const;
    std::string converged_text() const;

    WorldOptions options_;
    topology::Prng prng_;
    topology::Members members_;
    std::vector<std::size_t> data_nodes_;
    Trace trace_;
    Network network_;
    std::vector<std::unique_ptr<Node>> nodes_;
    std::vector<std::uint64_t> rates_;  // ticks per 1000 world ticks
    std::vector<std::uint64_t> rate_acc_;
    std::vector<std::deque<Envelope>> held_;  // for paused nodes
    std::unique_ptr<FaultDriver> faults_;
    Checkers checkers_;
    std::uint64_t now_ = 0;
    bool stopped_ = false;
    std::vector<Violation> violations_;
    std::vector<std::string> first_trace_;
    std::map<std::string, std::uint64_t> fault_counts_;
    std::uint64_t heal_to_master_ = 0;
    std::uint64_t disk_delay_max_ = 0;
    std::uint64_t slow_disk_permille_ = 0;
    // Clients.
    bool publishing_ = true;
    std::uint64_t publish_acc_ = 0;
    std::uint64_t next_id_ = 1;
    std::multimap<std::uint64_t, std::pair<std::size_t, std::uint64_t>> retries_;  // due -> publish
    std::set<std::uint64_t> acked_ids_;
};

}  // namespace spirit::sim
