#include "topology/view.h"

#include <algorithm>
#include <type_traits>

#include "core/assert.h"

namespace spirit::topology {

namespace {

std::string name_of(const core::TopologyKey& key) {
    return key.author.node.value() + "/" + std::to_string(key.seq);
}

std::string epoch_text(core::Epoch e) {
    return std::to_string(e.value());
}

std::optional<std::string> check_vote(const core::topo::Voted& v, const Members& members) {
    if (v.epoch.value() == 0) return "a vote in epoch 0";
    if (!members.is_data(v.candidate)) {
        return "a vote for " + v.candidate.value() + ", which is not a data member";
    }
    if (members.candidate_of(v.epoch) != v.candidate) {
        return "a vote for " + v.candidate.value() + " in epoch " + epoch_text(v.epoch) +
               ", which belongs to " + members.candidate_of(v.epoch).value();
    }
    return std::nullopt;
}

std::optional<std::string> check_election(const core::NodeId& author,
                                          const core::topo::MasterElected& m,
                                          const Members& members) {
    if (m.epoch.value() == 0) return "an election in epoch 0";
    if (members.candidate_of(m.epoch) != author) {
        return "an election in epoch " + epoch_text(m.epoch) + ", which belongs to " +
               members.candidate_of(m.epoch).value();
    }
    std::vector<core::NodeId> voters = m.voters;
    std::sort(voters.begin(), voters.end());
    voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
    const auto members_voting = std::count_if(voters.begin(), voters.end(),
                                              [&](const auto& v) { return members.contains(v); });
    if (static_cast<std::size_t>(members_voting) < members.majority()) {
        return "an election in epoch " + epoch_text(m.epoch) + " with " +
               std::to_string(members_voting) + " voters, fewer than a majority of " +
               std::to_string(members.majority());
    }
    return std::nullopt;
}

// A lifecycle event names a data stream (the codec bounds its length) in
// an epoch; that its author mastered the epoch the view checks.
std::optional<std::string> check_lifecycle(const std::string& stream, core::Epoch epoch) {
    if (epoch.value() == 0) return "a change of stream \"" + stream + "\" in epoch 0";
    if (stream.empty()) return "a change of a stream without a name";
    if (stream.front() == '$') return "a change of system stream " + stream;
    return std::nullopt;
}

std::optional<std::string> check_group(const std::string& group) {
    if (group == default_group) return std::nullopt;
    return "group \"" + group + "\", which this node does not know";
}

}  // namespace

std::optional<std::string> check_event(const core::TopologyEvent& event, const Members& members) {
    const core::NodeId& author = event.key.author.node;
    std::optional<std::string> why;
    if (!members.contains(author)) {
        why = "its author is not a member";
    } else if (event.key.seq == 0) {
        why = "seq 0";
    } else if (const auto* v = std::get_if<core::topo::Voted>(&event.body)) {
        why = check_group(v->group);
        if (!why) why = check_vote(*v, members);
    } else if (const auto* m = std::get_if<core::topo::MasterElected>(&event.body)) {
        why = check_group(m->group);
        if (!why) why = check_election(author, *m, members);
    } else if (const auto* s = std::get_if<core::topo::SteppedDown>(&event.body)) {
        why = check_group(s->group);
    } else if (const auto* c = std::get_if<core::topo::StreamCreated>(&event.body)) {
        why = check_lifecycle(c->stream, c->epoch);
    } else if (const auto* d = std::get_if<core::topo::StreamDeleted>(&event.body)) {
        why = check_lifecycle(d->stream, d->epoch);
    } else if (const auto* p = std::get_if<core::topo::StreamPolicyChanged>(&event.body)) {
        why = check_lifecycle(p->stream, p->epoch);
    }
    if (!why) return std::nullopt;
    return name_of(event.key) + ": " + *why;
}

bool View::add(const core::TopologyEvent& event) {
    if (!keys_.insert(event.key).second) return false;
    const core::NodeId& author = event.key.author.node;
    std::visit(
        [&](const auto& body) {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, core::topo::NodeStarted>) {
                Start& s = starts_[event.key.author];
                if (body.incarnation >= s.incarnation) {
                    s = Start{body.incarnation, body.witness};
                }
            } else if constexpr (std::is_same_v<T, core::topo::Voted>) {
                core::Epoch& v = votes_[author];
                v = std::max(v, body.epoch);
                highest_epoch_ = std::max(highest_epoch_, body.epoch);
            } else if constexpr (std::is_same_v<T, core::topo::MasterElected>) {
                auto [it, inserted] = masters_.emplace(body.epoch, author);
                if (!inserted && it->second != author) {
                    conflicts_.insert(body.epoch);
                    it->second = std::min(it->second, author);
                }
                highest_epoch_ = std::max(highest_epoch_, body.epoch);
            } else if constexpr (std::is_same_v<T, core::topo::SteppedDown>) {
                stepped_down_.emplace(body.epoch, author);
            } else if constexpr (std::is_same_v<T, core::topo::StreamCompleted>) {
                auto& c = completions_[body.stream];
                c = std::max(c, std::pair{body.epoch, body.seq});
                changes_[body.stream].insert(Change{
                    body.epoch, event.key.seq, event.key.author, Change::Kind::completed, {}});
            } else if constexpr (std::is_same_v<T, core::topo::StreamCreated>) {
                changes_[body.stream].insert(Change{body.epoch, event.key.seq, event.key.author,
                                                    Change::Kind::created, body.policy});
            } else if constexpr (std::is_same_v<T, core::topo::StreamPolicyChanged>) {
                changes_[body.stream].insert(Change{body.epoch, event.key.seq, event.key.author,
                                                    Change::Kind::policy, body.policy});
            } else if constexpr (std::is_same_v<T, core::topo::StreamDeleted>) {
                changes_[body.stream].insert(
                    Change{body.epoch, event.key.seq, event.key.author, Change::Kind::deleted, {}});
            } else if constexpr (std::is_same_v<T, core::topo::SuffixQuarantined>) {
                quarantines_.insert(
                    Quarantine{author, body.stream, body.epoch, body.after_seq, body.count});
            }
        },
        event.body);
    return true;
}

Role View::role() const {
    if (masters_.empty()) return Role{};
    const auto& [epoch, master] = *masters_.rbegin();
    if (stepped_down(epoch)) return Role{epoch, core::NodeId{}};
    return Role{epoch, master};
}

std::optional<core::NodeId> View::master_of(core::Epoch epoch) const {
    auto it = masters_.find(epoch);
    if (it == masters_.end()) return std::nullopt;
    return it->second;
}

bool View::stepped_down(core::Epoch epoch) const {
    auto it = masters_.find(epoch);
    return it != masters_.end() && stepped_down_.contains({epoch, it->second});
}

core::Epoch View::voted_by(const core::NodeId& node) const {
    auto it = votes_.find(node);
    return it == votes_.end() ? core::Epoch{0} : it->second;
}

std::uint64_t View::incarnation(const core::TopologyAuthor& author) const {
    auto it = starts_.find(author);
    return it == starts_.end() ? 0 : it->second.incarnation;
}

std::optional<View::StreamState> View::stream(const std::string& name) const {
    auto it = changes_.find(name);
    if (it == changes_.end()) return std::nullopt;
    std::optional<StreamState> out;
    // In (epoch, seq) order: only the master of an epoch changes a stream in it.
    for (const Change& c : it->second) {
        if (master_of(c.epoch) != c.author.node) continue;
        if (!out) out.emplace();
        out->epoch = c.epoch;
        out->seq = c.seq;
        out->exists = c.kind != Change::Kind::deleted;
        if (c.kind == Change::Kind::deleted) out->policy.reset();
        if (c.kind == Change::Kind::created || c.kind == Change::Kind::policy) {
            out->policy = c.policy;
        }
    }
    return out;
}

std::map<std::string, View::StreamState> View::streams() const {
    std::map<std::string, StreamState> out;
    for (const auto& [name, changes] : changes_) {
        if (auto state = stream(name)) out.emplace(name, *state);
    }
    return out;
}

std::string View::describe() const {
    std::string out = "events " + std::to_string(keys_.size()) + "\n";
    for (const auto& [epoch, master] : masters_) {
        out += "epoch " + epoch_text(epoch) + " master " + master.value();
        if (stepped_down(epoch)) out += " (stepped down)";
        if (conflicts_.contains(epoch)) out += " (CONFLICT)";
        out += "\n";
    }
    for (const auto& [node, epoch] : votes_) {
        out += "voted " + node.value() + " up to epoch " + epoch_text(epoch) + "\n";
    }
    for (const auto& [author, start] : starts_) {
        out += "started " + author.text() + " incarnation " + std::to_string(start.incarnation) +
               (start.witness ? " witness" : "") + "\n";
    }
    for (const auto& [stream, at] : completions_) {
        out += "completed " + stream + " in epoch " + epoch_text(at.first) + " at seq " +
               std::to_string(at.second.value()) + "\n";
    }
    for (const auto& [name, state] : streams()) {
        out += "stream " + name + (state.exists ? " exists" : " deleted") + " since epoch " +
               epoch_text(state.epoch) + "/" + std::to_string(state.seq);
        if (state.policy) {
            out += state.policy->redundancy == core::Redundancy::immediate ? " immediate"
                                                                           : " eventual";
            out += " retention " + std::to_string(state.policy->retention.events_max) + "/" +
                   std::to_string(state.policy->retention.bytes_max) + "/" +
                   std::to_string(state.policy->retention.age_ms_max);
        }
        out += "\n";
    }
    for (const Quarantine& q : quarantines_) {
        out += "quarantined " + q.node.value() + " " + q.stream + " after seq " +
               std::to_string(q.after_seq.value()) + ": " + std::to_string(q.count) +
               " events (epoch " + epoch_text(q.epoch) + ")\n";
    }
    return out;
}

}  // namespace spirit::topology
