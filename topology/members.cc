#include "topology/members.h"

#include <algorithm>

#include "core/assert.h"

namespace spirit::topology {

Members::Members(std::vector<Member> members) : all_(std::move(members)) {
    std::sort(all_.begin(), all_.end(),
              [](const Member& a, const Member& b) { return a.id < b.id; });
    for (std::size_t i = 1; i < all_.size(); ++i) SPIRIT_ASSERT(all_[i - 1].id != all_[i].id);
    for (const Member& m : all_) {
        if (m.role == MemberRole::data) data_.push_back(m.id);
    }
    SPIRIT_ASSERT(!data_.empty());
}

bool Members::contains(const core::NodeId& id) const {
    return role_of(id).has_value();
}

bool Members::is_data(const core::NodeId& id) const {
    return std::binary_search(data_.begin(), data_.end(), id);
}

std::optional<MemberRole> Members::role_of(const core::NodeId& id) const {
    auto it = std::lower_bound(all_.begin(), all_.end(), id,
                               [](const Member& m, const core::NodeId& v) { return m.id < v; });
    if (it == all_.end() || it->id != id) return std::nullopt;
    return it->role;
}

const core::NodeId& Members::candidate_of(core::Epoch epoch) const {
    SPIRIT_ASSERT(epoch.value() >= 1);
    return data_[epoch.value() % data_.size()];
}

core::Epoch Members::next_epoch(const core::NodeId& candidate, core::Epoch after) const {
    auto it = std::lower_bound(data_.begin(), data_.end(), candidate);
    SPIRIT_ASSERT(it != data_.end() && *it == candidate);
    const auto index = static_cast<std::uint64_t>(it - data_.begin());
    const std::uint64_t d = data_.size();
    const std::uint64_t first = after.value() + 1;
    const std::uint64_t e = first + (index + d - first % d) % d;
    SPIRIT_ASSERT(e > after.value() && e % d == index);
    return core::Epoch{e};
}

}  // namespace spirit::topology
