// storage/dedup_window.h: the idempotency window (internal to storage/).
//
// Remembers (stream id, event id) -> seq for the most recent producer event
// ids, bounded by count and by age. A flat open-addressing table (linear
// probing, backward-shift deletion, load factor <= 1/2) keyed by SipHash
// with a random key: one probe sequence per operation and no allocation per
// event, and producers, who choose the ids, cannot choose collisions. A ring
// of insertions in time order drives eviction.
//
// Not thread-safe: the sequencer owns it under its lock.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/hash_chain.h"
#include "core/ids.h"

namespace spirit::storage::detail {

// One id as the window holds it (for loading it in bulk).
struct IdEntry {
    core::TimestampNs ts;
    core::StreamId stream;
    core::EventId id;
    core::Seq seq;
};

class DedupWindow {
 public:
    // REQUIRES: events_max >= 1. Memory grows with the ids held (about 130
    // bytes each at the table's lowest load), not with events_max.
    DedupWindow(std::uint64_t events_max, std::uint64_t window_ns);

    struct Found {
        core::Seq seq;
        std::uint64_t generation;
    };

    // The entry of (stream, id) if present; otherwise inserts it with `seq`,
    // `generation` and `ts` and returns nullopt. Makes room first by
    // evicting the oldest entry if the window is full.
    std::optional<Found> find_or_insert(core::StreamId stream, const core::EventId& id,
                                        core::Seq seq, std::uint64_t generation,
                                        core::TimestampNs ts);
    // Removes (stream, id) if it is present with `generation`.
    void erase(core::StreamId stream, const core::EventId& id, std::uint64_t generation);
    // Removes every entry of `stream` with a seq above `after` (truncation).
    void erase_after(core::StreamId stream, core::Seq after);
    // Drops entries older than the window at `now`.
    void evict_expired(core::TimestampNs now);
    // Drops every entry.
    void clear();

    std::uint64_t size() const { return size_; }

 private:
    struct Slot {
        std::uint64_t stream = 0;  // 0: empty (stream ids start at 1)
        core::EventId id;
        std::uint64_t seq = 0;
        std::uint64_t generation = 0;
        std::uint64_t ts = 0;  // insertion time, matches the ring entry that owns it
    };
    struct Inserted {
        std::uint64_t ts;
        std::uint64_t stream;
        core::EventId id;
    };

    std::size_t home(std::uint64_t stream, const core::EventId& id) const;
    // Index of the slot holding (stream, id), or of the empty slot ending its probe.
    std::size_t probe(std::uint64_t stream, const core::EventId& id) const;
    void remove_at(std::size_t index);
    void evict_oldest();
    void grow();

    const std::uint64_t events_max_;
    const std::uint64_t window_ns_;
    core::KeyedHash hash_;
    std::vector<Slot> slots_;
    std::size_t mask_;
    std::uint64_t size_ = 0;
    // Insertion order, oldest first; at most events_max_ entries.
    std::deque<Inserted> ring_;
};

}  // namespace spirit::storage::detail
