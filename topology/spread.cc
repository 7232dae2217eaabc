#include "topology/spread.h"

#include <algorithm>

namespace spirit::topology {

bool covers(const Versions& have, const Versions& need) {
    return std::all_of(need.begin(), need.end(), [&](const auto& n) {
        auto it = have.find(n.first);
        return n.second == 0 || (it != have.end() && it->second >= n.second);
    });
}

void Spread::report(const core::NodeId& peer, core::Epoch epoch, Versions versions) {
    auto it = reports_.find(peer);
    if (it != reports_.end() && epoch < it->second.epoch) return;
    reports_.insert_or_assign(peer, Report{epoch, std::move(versions)});
}

std::size_t Spread::holding(const core::TopologyKey& key, core::Epoch epoch) const {
    return static_cast<std::size_t>(
        std::count_if(reports_.begin(), reports_.end(), [&](const auto& r) {
            if (r.second.epoch != epoch) return false;
            auto v = r.second.versions.find(key.author);
            return v != r.second.versions.end() && v->second >= key.seq;
        }));
}

std::size_t Spread::covered(const Versions& have, core::Epoch epoch) const {
    return static_cast<std::size_t>(
        std::count_if(reports_.begin(), reports_.end(), [&](const auto& r) {
            return r.second.epoch >= epoch && topology::covers(have, r.second.versions);
        }));
}

}  // namespace spirit::topology
