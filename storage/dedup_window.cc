#include "storage/dedup_window.h"

#include <array>
#include <cstring>

#include "core/assert.h"

namespace spirit::storage::detail {

namespace {

constexpr std::size_t slots_initial = 1024;

}  // namespace

DedupWindow::DedupWindow(std::uint64_t events_max, std::uint64_t window_ns)
    : events_max_(events_max),
      window_ns_(window_ns),
      slots_(slots_initial),
      mask_(slots_initial - 1) {
    SPIRIT_ASSERT(events_max >= 1);
}

std::size_t DedupWindow::home(std::uint64_t stream, const core::EventId& id) const {
    std::array<std::byte, 24> key;
    core::store_be64(key.data(), stream);
    std::memcpy(key.data() + 8, id.bytes.data(), 16);
    return static_cast<std::size_t>(hash_(key)) & mask_;
}

std::size_t DedupWindow::probe(std::uint64_t stream, const core::EventId& id) const {
    // Terminates: the load factor stays <= 1/2, so an empty slot exists.
    for (std::size_t i = home(stream, id);; i = (i + 1) & mask_) {
        const Slot& s = slots_[i];
        if (s.stream == 0 || (s.stream == stream && s.id == id)) return i;
    }
}

std::optional<DedupWindow::Found> DedupWindow::find_or_insert(core::StreamId stream,
                                                              const core::EventId& id,
                                                              core::Seq seq,
                                                              std::uint64_t generation,
                                                              core::TimestampNs ts) {
    SPIRIT_ASSERT(stream.value() != 0);
    std::size_t i = probe(stream.value(), id);
    if (slots_[i].stream != 0) return Found{core::Seq{slots_[i].seq}, slots_[i].generation};
    if (ring_.size() == events_max_) {
        evict_oldest();
        i = probe(stream.value(), id);  // eviction may have shifted slots
    }
    if ((size_ + 1) * 2 > slots_.size()) {
        grow();
        i = probe(stream.value(), id);
    }
    slots_[i] = Slot{stream.value(), id, seq.value(), generation, ts.value()};
    ++size_;
    ring_.push_back(Inserted{ts.value(), stream.value(), id});
    SPIRIT_ASSERT(size_ <= events_max_);
    return std::nullopt;
}

void DedupWindow::erase(core::StreamId stream, const core::EventId& id, std::uint64_t generation) {
    std::size_t i = probe(stream.value(), id);
    if (slots_[i].stream != 0 && slots_[i].generation == generation) remove_at(i);
}

void DedupWindow::erase_after(core::StreamId stream, core::Seq after) {
    // Rare (truncation): a full scan. Removing shifts later slots back, so
    // look at the same index again after a removal.
    for (std::size_t i = 0; i < slots_.size();) {
        const Slot& s = slots_[i];
        if (s.stream == stream.value() && s.seq > after.value()) {
            remove_at(i);
        } else {
            ++i;
        }
    }
}

void DedupWindow::evict_expired(core::TimestampNs now) {
    while (!ring_.empty() && ring_.front().ts + window_ns_ < now.value()) evict_oldest();
}

void DedupWindow::clear() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    ring_.clear();
    size_ = 0;
}

void DedupWindow::evict_oldest() {
    SPIRIT_ASSERT(!ring_.empty());
    const Inserted& oldest = ring_.front();
    std::size_t i = probe(oldest.stream, oldest.id);
    // Only if the slot is the one this ring entry inserted: it may have been
    // erased (a failed append) and inserted again since.
    if (slots_[i].stream != 0 && slots_[i].ts == oldest.ts) remove_at(i);
    ring_.pop_front();
}

void DedupWindow::grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.stream != 0) slots_[probe(s.stream, s.id)] = s;
    }
}

void DedupWindow::remove_at(std::size_t index) {
    SPIRIT_ASSERT(slots_[index].stream != 0);
    // Backward-shift deletion: move later members of the probe run into the
    // hole so every lookup still finds its key before an empty slot.
    std::size_t hole = index;
    for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
        Slot& s = slots_[j];
        if (s.stream == 0) break;
        std::size_t want = home(s.stream, s.id);
        // Move s if its home is not in (hole, j] (cyclically).
        bool in_between = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j);
        if (!in_between) {
            slots_[hole] = s;
            hole = j;
        }
    }
    slots_[hole] = Slot{};
    --size_;
}

}  // namespace spirit::storage::detail
