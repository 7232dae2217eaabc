// Retention: once a second, every stream with a limit on events, bytes or
// age is trimmed from its start to within the limit. Trims go through the
// store's writer like appends (bounded slices per transaction); one trim per
// stream is in flight at a time.
#include <chrono>

#include "daemon/log.h"
#include "daemon/server.h"

namespace spirit::daemon {

namespace {

// Events whose sizes one sweep reads for a byte limit; the next sweep goes on.
constexpr std::uint64_t bytes_walk_events_max = 100'000;

core::TimestampNs wall_clock_now() {
    return core::TimestampNs{
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count())};
}

}  // namespace

void Server::apply_retention() {
    if (shutting_down_) return;
    auto streams = store_->list_streams();
    if (!streams) {
        spdlog::warn("retention: listing streams failed: {}", streams.error().message());
        return;
    }
    for (const storage::StreamInfo& info : *streams) {
        const core::Retention& limits = info.policy.retention;
        if (limits == core::Retention{} || info.event_count == 0) continue;
        if (trims_in_flight_.contains(info.name)) continue;
        core::Seq target = info.first_seq;
        if (limits.events_max > 0 && info.event_count > limits.events_max) {
            target = std::max(target, core::Seq{info.last_seq.value() - limits.events_max + 1});
        }
        if (limits.age_ms_max > 0) {
            const std::uint64_t now = wall_clock_now().value();
            const std::uint64_t age_ns = limits.age_ms_max * 1'000'000;
            if (now > age_ns) {
                auto at = store_->seq_at_time(info.name, core::TimestampNs{now - age_ns});
                if (at) target = std::max(target, *at);
            }
        }
        if (limits.bytes_max > 0 && info.event_bytes > limits.bytes_max) {
            auto at = store_->seq_keeping_bytes(info.name, limits.bytes_max, bytes_walk_events_max);
            if (at) target = std::max(target, *at);
        }
        target = std::min(target, info.last_seq.next());
        if (target <= info.first_seq) continue;
        const std::string name = info.name;
        trims_in_flight_.insert(name);
        auto queued = store_->trim_before(name, target, [this, name, target](core::Result<void> r) {
            trims_in_flight_.erase(name);
            if (!r) {
                spdlog::warn("retention: trimming {} before seq {} failed: {}", name,
                             target.value(), r.error().message());
            } else {
                spdlog::debug("retention: {} now starts at seq {}", name, target.value());
            }
        });
        if (!queued) {
            trims_in_flight_.erase(name);
            spdlog::warn("retention: trimming {}: {}", name, queued.error().message());
        }
    }
}

}  // namespace spirit::daemon
