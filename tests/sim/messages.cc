// One deterministic line for every simulated message and `$topology` event
// (the traces).
#include "tests/sim/messages.h"

#include <fmt/format.h>

#include <type_traits>

namespace spirit::sim {

namespace {

template <class... Fs>
struct Overload : Fs... {
    using Fs::operator()...;
};
template <class... Fs>
Overload(Fs...) -> Overload<Fs...>;

std::string position_text(const topology::Position& p) {
    return fmt::format("c{} seq {} {}", p.confirmed.value(), p.seq.value(),
                       short_hash(hash_of(p.hash)));
}

std::string election_text(const topology::ElectionMessage& m) {
    return std::visit(Overload{
                          [](const topology::Heartbeat& h) {
                              return fmt::format("heartbeat epoch {} master {}", h.epoch.value(),
                                                 h.master.empty() ? "none" : h.master.value());
                          },
                          [](const topology::VoteRequest& r) {
                              return fmt::format("{}vote request epoch {}{}", r.pre ? "pre-" : "",
                                                 r.epoch.value(), r.forced ? " forced" : "");
                          },
                          [](const topology::VoteResponse& r) {
                              return fmt::format("{}vote {} epoch {} (knows {})",
                                                 r.pre ? "pre-" : "",
                                                 r.granted ? "granted" : "refused", r.epoch.value(),
                                                 r.known.value());
                          },
                          [](const topology::TimeoutNow& t) {
                              return fmt::format("timeout-now epoch {}", t.epoch.value());
                          },
                      },
                      m);
}

}  // namespace

std::string describe(const core::TopologyEvent& event) {
    const std::string key = fmt::format("{}/{}", event.key.author.node.value(), event.key.seq);
    const std::string body = std::visit(
        Overload{
            [](const core::topo::NodeStarted& s) {
                return fmt::format("started (incarnation {})", s.incarnation);
            },
            [](const core::topo::Voted& v) {
                return fmt::format("voted for {} in epoch {}", v.candidate.value(),
                                   v.epoch.value());
            },
            [](const core::topo::MasterElected& m) {
                return fmt::format("elected in epoch {} by {} voters", m.epoch.value(),
                                   m.voters.size());
            },
            [](const core::topo::SteppedDown& s) {
                return fmt::format("stepped down in epoch {}: {}", s.epoch.value(), s.reason);
            },
            [](const core::topo::StreamCompleted& c) {
                return fmt::format("completed {} in epoch {} at seq {}", c.stream, c.epoch.value(),
                                   c.seq.value());
            },
            [](const core::topo::SuffixQuarantined& q) {
                return fmt::format("quarantined {} events of {} after seq {} (epoch {})", q.count,
                                   q.stream, q.after_seq.value(), q.epoch.value());
            },
            [](const core::topo::StreamCreated& c) {
                return fmt::format("created {} in epoch {}", c.stream, c.epoch.value());
            },
            [](const core::topo::StreamDeleted& d) {
                return fmt::format("deleted {} in epoch {}", d.stream, d.epoch.value());
            },
            [](const core::topo::StreamPolicyChanged& c) {
                return fmt::format("changed the policy of {} in epoch {}", c.stream,
                                   c.epoch.value());
            },
        },
        event.body);
    return key + " " + body;
}

std::string describe(const Message& message) {
    return std::visit(
        Overload{
            [](const ElectionMsg& m) { return election_text(m.message); },
            [](const TopologyEventsMsg& m) {
                return fmt::format("$topology: {} events", m.events.size());
            },
            [](const PositionsMsg& m) {
                return fmt::format("positions epoch {}: imm {}, ev {}", m.epoch.value(),
                                   position_text(m.at[imm]), position_text(m.at[ev]));
            },
            [](const SolicitMsg& m) { return fmt::format("solicit epoch {}", m.epoch.value()); },
            [](const ReplicateMsg& m) {
                return fmt::format("replicate epoch {} {} after seq {}: {} events, visible {}",
                                   m.epoch.value(), stream_name(m.stream), m.prev_seq.value(),
                                   m.entries.size(), m.visible.value());
            },
            [](const AckMsg& m) {
                return fmt::format("ack epoch {} {} {}", m.epoch.value(), stream_name(m.stream),
                                   position_text(m.at));
            },
            [](const RefusedMsg& m) {
                return fmt::format("refused epoch {} {}: resumes after seq {}", m.epoch.value(),
                                   stream_name(m.stream), m.resume_seq.value());
            },
            [](const ProbeMsg& m) {
                return fmt::format("probe epoch {} {} at {} seqs", m.epoch.value(),
                                   stream_name(m.stream), m.seqs.size());
            },
            [](const ProbeReplyMsg& m) {
                return fmt::format("probe reply epoch {} {}: {} hashes", m.epoch.value(),
                                   stream_name(m.stream), m.hashes.size());
            },
            [](const TruncateMsg& m) {
                return fmt::format("truncate epoch {} {} after seq {}", m.epoch.value(),
                                   stream_name(m.stream), m.after.value());
            },
            [](const FetchMsg& m) {
                return fmt::format("fetch epoch {} {} seqs {}..{}", m.epoch.value(),
                                   stream_name(m.stream), m.from.value(), m.to.value());
            },
            [](const FetchReplyMsg& m) {
                return fmt::format(
                    "fetch reply epoch {} {} after seq {}: {}", m.epoch.value(),
                    stream_name(m.stream), m.prev_seq.value(),
                    m.ok ? std::to_string(m.entries.size()) + " events" : std::string("not held"));
            },
            [](const VisibleMsg& m) {
                return fmt::format("visible epoch {} {} up to seq {}", m.epoch.value(),
                                   stream_name(m.stream), m.seq.value());
            },
            [](const FencedMsg& m) {
                return fmt::format("fenced: knows epoch {}", m.epoch.value());
            },
            [](const ForwardMsg& m) {
                return fmt::format("forwarded publish {} id {}", stream_name(m.stream), m.id);
            },
        },
        message);
}

}  // namespace spirit::sim
