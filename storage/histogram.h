// storage/histogram.h: a fixed-bucket histogram of unsigned values that any
// thread may add to without a lock (the writer thread records commit
// latencies and batch sizes in it), and the plain snapshot readers copy out.
// The store knows nothing of how the daemon publishes them (Prometheus).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace spirit::storage {

// What a histogram held at one moment. counts[i] counts the values v with
// bounds[i-1] < v <= bounds[i] (bounds[-1] = 0 ... bounds[n] = +infinity),
// so counts has bounds.size() + 1 entries; they are not cumulative. `sum` is
// the sum of every value observed. A snapshot taken while values are being
// added may count one of them in `sum` and not yet in its bucket (or the
// reverse); the bucket counts themselves are each exact.
struct HistogramSnapshot {
    std::vector<std::uint64_t> bounds;  // ascending upper bounds, inclusive
    std::vector<std::uint64_t> counts;  // bounds.size() + 1 buckets
    std::uint64_t sum = 0;

    // The number of values observed: the sum of the buckets.
    std::uint64_t count() const;
};

class Histogram {
 public:
    // REQUIRES: `bounds` ascending, not empty.
    explicit Histogram(std::span<const std::uint64_t> bounds);
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    // Adds one value. Thread-safe, lock-free (relaxed atomics).
    void observe(std::uint64_t value);
    // Thread-safe.
    HistogramSnapshot snapshot() const;

 private:
    std::vector<std::uint64_t> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1
    std::atomic<std::uint64_t> sum_{0};
};

// Bucket bounds for durations in microseconds: 25 µs to 10 s, about three
// per decade (an LMDB commit with two flushes takes 230-300 µs here).
std::span<const std::uint64_t> duration_us_bounds();
// Bucket bounds for the events of one group commit: powers of two, 1 to 65,536.
std::span<const std::uint64_t> batch_events_bounds();

}  // namespace spirit::storage
