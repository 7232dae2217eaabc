// tests/sim/trace.h: the simulator's readable, deterministic trace. Every
// line is folded into a digest (two runs of one seed must agree on it, byte
// for byte), the last few are kept for failure reports, and a sink (the
// replay tool's --trace) may print them all as they happen.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace spirit::sim {

class Trace {
 public:
    explicit Trace(std::size_t keep = 50) : keep_(keep) {}

    void line(std::uint64_t tick, const std::string& text);

    // Message-level lines (every send and delivery) are built only when asked.
    bool messages() const { return messages_; }
    void set_messages(bool on) { messages_ = on; }
    void set_sink(std::function<void(const std::string&)> sink) { sink_ = std::move(sink); }

    std::vector<std::string> last() const { return {last_.begin(), last_.end()}; }
    std::uint64_t digest() const { return digest_; }
    std::uint64_t count() const { return count_; }

 private:
    std::size_t keep_;
    bool messages_ = false;
    std::function<void(const std::string&)> sink_;
    std::deque<std::string> last_;
    std::uint64_t digest_ = 0xcbf29ce484222325ULL;
    std::uint64_t count_ = 0;
};

}  // namespace spirit::sim
