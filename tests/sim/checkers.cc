// The checkers of checkers.h: each invariant as a function of the nodes'
// state and the recorded history, returning readable violations.
#include "tests/sim/checkers.h"

#include <fmt/format.h>

#include <algorithm>

#include "tests/sim/master.h"
#include "tests/sim/node.h"
#include "tests/sim/world.h"

namespace spirit::sim {

namespace {

// Checker 6's slack, in election timeouts: check-quorum runs once per
// timeout and looks back one timeout, so a cut-off master stops within two;
// one more covers message delays and a disk write acked just before.
constexpr std::uint64_t stale_timeouts = 3;

std::string entry_text(Seq seq, const Entry& e) {
    return fmt::format("seq {} id {} epoch {} ({})", seq.value(), e.id, e.epoch.value(),
                       short_hash(e.hash));
}

}  // namespace

Checkers::Checkers(World& world) : world_(world) {}

std::string Checkers::where(const Node& node) const {
    return node.id().value();
}

std::uint64_t Checkers::stale_ticks_max() const {
    return stale_timeouts * world_.options().election_ticks;
}

std::vector<Violation> Checkers::node_started(const Node& node) {
    std::vector<Violation> out;
    if (shadows_.size() < world_.size()) shadows_.resize(world_.size());
    Shadow& shadow = shadows_[node.index()];
    shadow.life = node.life();
    shadow.epoch = node.elector().epoch();
    // Checker 7 across a restart: never below a vote it made durable.
    topology::View durable;
    for (const auto& [key, e] : node.disk().durable().topology) durable.add(e);
    const Epoch voted = durable.voted_by(node.id());
    if (node.elector().epoch() < voted) {
        out.push_back({"epochs-monotonic",
                       fmt::format("{} restarted in epoch {}, below its durable vote in epoch {}",
                                   where(node), node.elector().epoch().value(), voted.value())});
    }
    return out;
}

std::vector<Violation> Checkers::node_stepped(const Node& node) {
    std::vector<Violation> out;
    const topology::Elector& e = node.elector();
    Shadow& shadow = shadows_[node.index()];
    // Checker 7: within one life the epoch never goes down.
    if (e.epoch() < shadow.epoch) {
        out.push_back(
            {"epochs-monotonic", fmt::format("{} went from epoch {} back to {}", where(node),
                                             shadow.epoch.value(), e.epoch().value())});
    }
    shadow.epoch = e.epoch();
    if (e.state() == topology::Elector::State::master) check_elected_durable(node, out);
    // Checker 1: one master per epoch, over all nodes and all time.
    if (e.state() == topology::Elector::State::master) {
        auto [it, fresh] = masters_.emplace(e.epoch(), node.index());
        if (fresh) {
            std::vector<std::uint64_t> lived;
            for (std::size_t i = 0; i < world_.size(); ++i) lived.push_back(world_.node(i).lived());
            master_since_.emplace(e.epoch(), std::move(lived));
        } else if (it->second != node.index()) {
            out.push_back(
                {"one-master-per-epoch", fmt::format("{} and {} are both master of epoch {}",
                                                     world_.node(it->second).id().value(),
                                                     where(node), e.epoch().value())});
        }
    }
    // A node follows no master its own `$topology` says stepped down.
    const topology::Role role = e.role();
    if (!role.master.empty() && role.master != node.id() && e.view().stepped_down(role.epoch) &&
        e.view().master_of(role.epoch) == role.master) {
        out.push_back({"role-agrees-with-view",
                       fmt::format("{} follows {} as master of epoch {}, which its $topology says "
                                   "stepped down",
                                   where(node), role.master.value(), role.epoch.value())});
    }
    for (Epoch c : e.view().conflicts()) {
        if (conflicts_reported_.insert(c).second) {
            out.push_back(
                {"one-master-per-epoch",
                 fmt::format("{}'s view holds two masters of epoch {}", where(node), c.value())});
        }
    }
    return out;
}

// A master only once its MasterElected is durable on its own disk.
void Checkers::check_elected_durable(const Node& node, std::vector<Violation>& out) {
    const Epoch epoch = node.elector().epoch();
    for (const auto& [key, e] : node.disk().durable().topology) {
        const auto* m = std::get_if<core::topo::MasterElected>(&e.body);
        if (key.author.node == node.id() && m != nullptr && m->epoch == epoch) return;
    }
    out.push_back({"master-once-elected-durable",
                   fmt::format("{} is master of epoch {} before its MasterElected is durable",
                               where(node), epoch.value())});
}

std::vector<Violation> Checkers::tick() {
    std::vector<Violation> out;
    for (std::size_t i = 0; i < world_.size(); ++i) {
        const Node& n = world_.node(i);
        if (n.data()) check_removed(n, shadows_[i], out);
    }
    check_prefixes(out);
    return out;
}

// Checker 4: whatever left a durable copy is in that node's quarantine. The
// shadow is the copy as last seen; chain hashes find where they part.
void Checkers::check_removed(const Node& node, Shadow& shadow, std::vector<Violation>& out) {
    if (shadow.version == node.disk().durable().version) return;
    shadow.version = node.disk().durable().version;
    for (std::size_t s = 0; s < stream_count; ++s) {
        const auto& quarantine = node.disk().durable().quarantine[s];
        for (std::size_t q = shadow.quarantined[s]; q < quarantine.size(); ++q) {
            quarantined(node, s, quarantine[q], out);
        }
        shadow.quarantined[s] = quarantine.size();
        const Copy& copy = node.durable(s);
        std::vector<std::uint64_t>& seen = shadow.hashes[s];
        std::size_t common = std::min(seen.size(), copy.entries.size());
        while (common > 0 && seen[common - 1] != copy.entries[common - 1].hash) --common;
        for (std::size_t i = common; i < seen.size(); ++i) {
            const bool kept = std::any_of(quarantine.begin(), quarantine.end(), [&](const auto& q) {
                return q.seq.value() == i + 1 && q.entry.hash == seen[i];
            });
            if (!kept) {
                out.push_back(
                    {"removed-in-quarantine",
                     fmt::format("{} {}: seq {} ({}) left its durable copy but is not in "
                                 "its quarantine",
                                 where(node), stream_name(s), i + 1, short_hash(seen[i]))});
            }
        }
        seen.resize(common);
        for (std::size_t i = common; i < copy.entries.size(); ++i) {
            seen.push_back(copy.entries[i].hash);
        }
    }
}

// Checker 5, from the quarantine's side.
void Checkers::quarantined(const Node& node, std::size_t stream, const Quarantined& q,
                           std::vector<Violation>& out) {
    if (stream != imm) return;
    const auto key = std::pair{q.seq, q.entry.hash};
    quarantined_imm_.emplace(key, node.index());
    if (auto it = exposed_imm_.find(key); it != exposed_imm_.end()) {
        out.push_back(
            {"exposed-not-quarantined",
             fmt::format("{} quarantined imm {}, which consumers on {} saw", where(node),
                         entry_text(q.seq, q.entry), world_.node(it->second).id().value())});
    }
}

// Checker 5, from the consumers' side.
std::vector<Violation> Checkers::exposed(const Node& node, std::size_t stream, Seq seq,
                                         const Entry& entry) {
    std::vector<Violation> out;
    if (stream != imm) return out;
    const auto key = std::pair{seq, entry.hash};
    exposed_imm_.emplace(key, node.index());
    if (auto it = quarantined_imm_.find(key); it != quarantined_imm_.end()) {
        out.push_back({"exposed-not-quarantined",
                       fmt::format("consumers on {} saw imm {}, which {} quarantined", where(node),
                                   entry_text(seq, entry), world_.node(it->second).id().value())});
    }
    return out;
}

// Checker 3: a slave aligned with its serving master holds a prefix of its copy.
void Checkers::check_prefixes(std::vector<Violation>& out) {
    for (std::size_t i : world_.data_nodes()) {
        const Node& slave = world_.node(i);
        if (!slave.up() || !slave.slave()) continue;
        const Node& master = world_.node(slave.slave()->master);
        if (!master.up() || master.master() == nullptr || !master.master()->serving() ||
            master.role() != slave.role()) {
            continue;
        }
        for (std::size_t s = 0; s < stream_count; ++s) {
            const Copy& copy = slave.durable(s);
            if (copy.confirmed != slave.role().epoch || copy.prefix_of(master.head(s))) continue;
            out.push_back({"prefix-of-master",
                           fmt::format("{} {} confirmed epoch {} at seq {} ({}), which is not a "
                                       "prefix of master {}'s copy (seq {}, {})",
                                       where(slave), stream_name(s), copy.confirmed.value(),
                                       copy.last_seq().value(), short_hash(copy.last_hash()),
                                       where(master), master.head(s).last_seq().value(),
                                       short_hash(master.head(s).last_hash()))});
        }
    }
}

std::vector<Violation> Checkers::acked(const AckRecord& ack) {
    std::vector<Violation> out;
    acks_.push_back(ack);
    const Node& node = world_.node(ack.node);
    // Checker 6: a stale master acks nothing, in its own ticks.
    for (auto it = master_since_.upper_bound(ack.epoch); it != master_since_.end(); ++it) {
        const std::uint64_t since = node.lived() - it->second[ack.node];
        stale_ack_ticks_max_ = std::max(stale_ack_ticks_max_, since);
        if (since <= stale_ticks_max()) continue;
        out.push_back(
            {"stale-master-silent",
             fmt::format("{}, master of epoch {}, acked {} seq {} {} of its ticks after "
                         "{} became master of epoch {}",
                         where(node), ack.epoch.value(), stream_name(ack.stream), ack.seq.value(),
                         since, world_.node(masters_.at(it->first)).id().value(),
                         it->first.value())});
        break;
    }
    if (ack.stream != imm) return out;
    // Checker 2: one seq, one event; one event, one seq.
    auto [at, fresh] = imm_acked_.emplace(ack.seq, ack);
    if (!fresh && at->second.hash != ack.hash) {
        out.push_back({"acked-imm-kept",
                       fmt::format("imm seq {} was acked as id {} ({}) in epoch {} and now as id "
                                   "{} ({}) in epoch {} by {}",
                                   ack.seq.value(), at->second.id, short_hash(at->second.hash),
                                   at->second.epoch.value(), ack.id, short_hash(ack.hash),
                                   ack.epoch.value(), where(node))});
    }
    auto [by_id, new_id] = imm_by_id_.emplace(ack.id, ack);
    if (!new_id && by_id->second.seq != ack.seq) {
        out.push_back({"acked-imm-kept",
                       fmt::format("imm id {} was acked at seq {} and now at seq {} by {}", ack.id,
                                   by_id->second.seq.value(), ack.seq.value(), where(node))});
    }
    return out;
}

std::vector<Violation> Checkers::holds_acked(const Node& node, Epoch epochs_max, const char* when) {
    std::vector<Violation> out;
    const Copy& copy = node.durable(imm);
    for (const auto& [seq, ack] : imm_acked_) {
        // A stale master that completes late cannot know what a higher epoch acked.
        if (ack.epoch > epochs_max || copy.hash_at(seq) == ack.hash) continue;
        const auto found = copy.find(ack.id);
        out.push_back(
            {"acked-imm-kept",
             fmt::format(
                 "{} {} without imm seq {} id {} ({}), acked by {} in epoch {} at "
                 "t={}; its copy ends at seq {}{}",
                 where(node), when, seq.value(), ack.id, short_hash(ack.hash),
                 world_.node(ack.node).id().value(), ack.epoch.value(), ack.tick,
                 copy.last_seq().value(),
                 found ? fmt::format(" and holds that id at seq {}", found->value()) : "")});
        if (out.size() >= 3) break;
    }
    return out;
}

std::vector<Violation> Checkers::completed(const Node& node, std::size_t stream) {
    if (stream != imm) return {};
    return holds_acked(node, node.role().epoch, "completed imm");
}

std::vector<Violation> Checkers::final_copies() {
    std::vector<Violation> out;
    for (std::size_t i : world_.data_nodes()) {
        const Node& n = world_.node(i);
        if (!n.up()) continue;
        for (Violation& v : holds_acked(n, Epoch{UINT64_MAX}, "ends")) {
            out.push_back(std::move(v));
        }
    }
    return out;
}

std::vector<Violation> Checkers::invalid_event(const Node& node, const std::string& why) {
    if (!invalid_reported_.insert(why).second) return {};
    return {{"valid-topology-events",
             fmt::format("{} refused a $topology event: {}", where(node), why)}};
}

}  // namespace spirit::sim
