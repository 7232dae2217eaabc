// The simulated disk (disk.h): ordered writes that become durable late, and
// what a crash keeps.
#include "tests/sim/disk.h"

#include <algorithm>
#include <type_traits>

#include "core/assert.h"

namespace spirit::sim {

void Disk::write(std::uint64_t now, std::uint64_t delay, DiskOp op, std::function<void()> done) {
    // Commits are ordered: a write is never durable before an earlier one.
    last_due_ = std::max(last_due_, now + delay);
    pending_.push_back(Pending{last_due_, std::move(op), std::move(done)});
}

std::size_t Disk::complete(std::uint64_t now) {
    std::size_t applied = 0;
    while (!pending_.empty() && pending_.front().due <= now) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        apply(p.op);
        ++durable_.version;
        ++applied;
        if (p.done) p.done();
    }
    return applied;
}

void Disk::crash() {
    pending_.clear();
}

void Disk::apply(const DiskOp& op) {
    std::visit(
        [&](const auto& o) {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, AppendOp>) {
                Copy& c = durable_.copies[o.stream];
                SPIRIT_ASSERT(c.last_seq().next() == o.first);
                c.entries.insert(c.entries.end(), o.entries.begin(), o.entries.end());
                c.confirmed = std::max(c.confirmed, o.confirmed);
            } else if constexpr (std::is_same_v<T, TruncateOp>) {
                Copy& c = durable_.copies[o.stream];
                for (std::size_t i = o.after.value(); i < c.entries.size(); ++i) {
                    durable_.quarantine[o.stream].push_back(Quarantined{Seq{i + 1}, c.entries[i]});
                }
                if (o.after.value() < c.entries.size()) c.entries.resize(o.after.value());
            } else if constexpr (std::is_same_v<T, ConfirmOp>) {
                Copy& c = durable_.copies[o.stream];
                SPIRIT_ASSERT(c.last_seq() == o.seq);
                c.confirmed = o.epoch;
            } else if constexpr (std::is_same_v<T, TopologyOp>) {
                for (const core::TopologyEvent& e : o.events) durable_.topology.emplace(e.key, e);
            }
        },
        op);
}

}  // namespace spirit::sim
