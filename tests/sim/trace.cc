// The trace (trace.h): digest, last lines, sink.
#include "tests/sim/trace.h"

#include <fmt/format.h>

namespace spirit::sim {

void Trace::line(std::uint64_t tick, const std::string& text) {
    std::string out = fmt::format("t={:<5} {}", tick, text);
    for (char c : out) digest_ = (digest_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    digest_ = (digest_ ^ '\n') * 0x100000001b3ULL;
    ++count_;
    if (sink_) sink_(out);
    last_.push_back(std::move(out));
    if (last_.size() > keep_) last_.pop_front();
}

}  // namespace spirit::sim
