#include "storage/histogram.h"

#include <algorithm>
#include <numeric>

#include "core/assert.h"

namespace spirit::storage {

namespace {

constexpr std::uint64_t duration_bounds[] = {
    25,      50,      100,     200,       300,       500,       750,        1'000,
    1'500,   2'000,   3'000,   5'000,     7'500,     10'000,    25'000,     50'000,
    100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000,
};

constexpr std::uint64_t batch_bounds[] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1'024, 2'048, 4'096, 8'192, 16'384, 32'768, 65'536,
};

}  // namespace

std::uint64_t HistogramSnapshot::count() const {
    return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});
}

Histogram::Histogram(std::span<const std::uint64_t> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
    SPIRIT_ASSERT(!bounds_.empty());
    SPIRIT_ASSERT(std::is_sorted(bounds_.begin(), bounds_.end()));
    for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(std::uint64_t value) {
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const {
    HistogramSnapshot s;
    s.bounds = bounds_;
    s.counts.resize(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::span<const std::uint64_t> duration_us_bounds() {
    return duration_bounds;
}

std::span<const std::uint64_t> batch_events_bounds() {
    return batch_bounds;
}

}  // namespace spirit::storage
