#include "tests/cluster/fake_peer.h"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "core/codec.h"
#include "tests/support/bytes.h"

namespace spirit::test {

std::optional<core::protocol::Message> FakePeer::receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto m = socket_.receive(left);
        if (!m) return std::nullopt;
        if (auto* h = std::get_if<core::protocol::Heartbeat>(&*m)) {
            heartbeat_ = *h;
            continue;
        }
        // Elections and $topology go on beside the data; a fake peer keeps
        // no $topology, and votes only when told to.
        if (auto* v = std::get_if<core::protocol::VoteRequest>(&*m)) {
            if (grant_votes_) {
                socket_.send(core::protocol::VoteResponse{v->epoch, v->pre, true, v->epoch});
            }
            continue;
        }
        if (std::holds_alternative<core::protocol::TopologyEvents>(*m)) continue;
        return m;
    }
}

std::vector<core::Bytes> sealed_events(const std::string& stream, core::Seq first,
                                       std::size_t count, core::Epoch epoch, core::Digest prev,
                                       core::Digest& last) {
    std::vector<core::Bytes> out;
    for (std::size_t i = 0; i < count; ++i) {
        const core::Seq seq{first.value() + i};
        const std::string payload = fmt::format("payload-{}", seq.value());
        core::EnvelopeView fields{stream,
                                  seq,
                                  epoch,
                                  core::TimestampNs{1'700'000'000'000'000'000ULL + seq.value()},
                                  event_id(seq.value()),
                                  "t",
                                  {},
                                  core::as_bytes(payload),
                                  core::Digest{}};
        core::Bytes bytes;
        prev = core::seal_envelope(bytes, fields, prev);
        out.push_back(std::move(bytes));
    }
    last = prev;
    return out;
}

}  // namespace spirit::test
