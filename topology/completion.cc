#include "topology/completion.h"

#include <algorithm>
#include <string>

#include "core/assert.h"
#include "topology/quorum.h"

namespace spirit::topology {

Completion::Completion(Options options, core::Epoch epoch)
    : options_(std::move(options)), epoch_(epoch) {
    SPIRIT_ASSERT(options_.replicas >= 1);
    SPIRIT_ASSERT(epoch_ > core::Epoch{0});
}

void Completion::report(const core::NodeId& from, CopyFreshness freshness,
                        std::vector<CopyReport> copies) {
    heard_.insert_or_assign(from, Heard{freshness, std::move(copies)});
}

void Completion::set_reachable(std::set<core::NodeId> peers) {
    reachable_ = std::move(peers);
}

void Completion::tick() {
    ++ticks_;
}

std::size_t Completion::counted() const {
    return static_cast<std::size_t>(std::count_if(heard_.begin(), heard_.end(), [](const auto& h) {
        return h.second.freshness == CopyFreshness::caught_up;
    }));
}

bool Completion::new_group() const {
    if (heard_.size() < majority(options_.replicas)) return false;
    return std::all_of(heard_.begin(), heard_.end(), [](const auto& h) {
        return h.second.freshness == CopyFreshness::fresh && h.second.copies.empty();
    });
}

bool Completion::gathered() const {
    if (!heard_.contains(options_.self)) return false;
    if (new_group()) return true;
    if (counted() < completion_quorum(options_.replicas)) return false;
    if (ticks_ >= options_.grace_ticks) return true;
    return std::all_of(reachable_.begin(), reachable_.end(),
                       [&](const core::NodeId& peer) { return heard_.contains(peer); });
}

std::vector<Choice> Completion::choices() const {
    SPIRIT_ASSERT(gathered());
    // Ranks `a` above `b`: position, then this node, then the smaller id.
    auto better = [&](const Choice& a, const Choice& b) {
        if (ranks_above(a.target, b.target)) return true;
        if (ranks_above(b.target, a.target)) return false;
        if ((a.source == options_.self) != (b.source == options_.self)) {
            return a.source == options_.self;
        }
        return a.source < b.source;
    };
    std::map<std::string, Choice> best;
    for (const auto& [node, heard] : heard_) {
        if (heard.freshness == CopyFreshness::fresh) continue;
        for (const CopyReport& c : heard.copies) {
            Choice candidate{c.stream, node, c.position, c.policy};
            auto [it, fresh] = best.try_emplace(c.stream, candidate);
            if (!fresh && better(candidate, it->second)) it->second = candidate;
        }
    }
    std::vector<Choice> out;
    out.reserve(best.size());
    for (auto& [stream, choice] : best) out.push_back(std::move(choice));
    return out;
}

std::string Completion::waiting_for() const {
    if (gathered()) return "";
    const std::size_t need = completion_quorum(options_.replicas);
    std::string text = std::to_string(heard_.size()) + " of " + std::to_string(options_.replicas) +
                       " copies reported (" + std::to_string(counted()) + " not fresh); " +
                       std::to_string(need) + " that are not fresh are needed";
    if (counted() >= need) text = "waiting for the reports of the peers that are connected";
    return text;
}

}  // namespace spirit::topology
