#include "daemon/cli/topology_format.h"

#include <fmt/format.h>

#include "core/topology_codec.h"
#include "daemon/cli_format.h"

namespace spirit::daemon::cli {

namespace proto = core::protocol;

namespace {

std::string opt_json(const std::string& text) {
    return text.empty() ? "null" : json_string(text);
}

template <class Int>
std::string opt_json(const std::optional<Int>& value) {
    return value ? fmt::format("{}", *value) : "null";
}

// An instance as TopologyAuthor::text writes it: 16 hex digits.
std::string instance_hex(std::uint64_t instance) {
    return fmt::format("{:016x}", instance);
}

std::string duration_text(std::uint64_t ms) {
    if (ms < 1000) return fmt::format("{} ms", ms);
    return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000.0);
}

std::string group_line(const proto::TopologyGroup& g) {
    if (g.master.empty()) return fmt::format("{}: no master: {}", g.name, g.why);
    return fmt::format("{}: master {}, elected in epoch {}", g.name, g.master, g.epoch.value());
}

std::string members_text(const proto::TopologyReply& t) {
    std::string out = fmt::format("{:<15} {:<8} {:<22} {:<9} {:<12} {:<6} {}\n", "MEMBER", "ROLE",
                                  "ADDRESS", "HEARD", "INCARNATION", "VOTED", "LINK");
    for (const proto::TopologyMember& m : t.members) {
        const std::string heard = m.self ? "-" : m.heard_ms ? duration_text(*m.heard_ms) : "never";
        std::string link = m.self ? "this node" : m.link;
        if (!m.self && m.node_id == t.master) link += "; the master";
        out += fmt::format("{:<15} {:<8} {:<22} {:<9} {:<12} {:<6} {}\n", m.node_id, m.role,
                           m.address.empty() ? "-" : m.address, heard, m.incarnation,
                           m.voted.value(), link);
    }
    return out;
}

std::string positions_text(const proto::TopologyReply& t) {
    const char* whose = t.positions_source == "master"
                            ? "the master's view of every copy"
                            : "this node's own copies (the master tracks the others)";
    std::string out = fmt::format("{:<16}{}", "POSITIONS", whose);
    if (t.positions_total > t.positions.size()) {
        out += fmt::format(": the {} laggiest of {}\n", t.positions.size(), t.positions_total);
    } else {
        out += fmt::format(" ({})\n", t.positions_total);
    }
    if (t.positions.empty()) return out + "no streams\n";
    out += fmt::format("{:<15} {:<15} {:<12} {:<10} {:<12} {}\n", "STREAM", "NODE", "SEQ",
                       "CONFIRMED", "LAG", "STATE");
    for (const proto::TopologyPosition& p : t.positions) {
        out += fmt::format("{:<15} {:<15} {:<12} {:<10} {:<12} {}\n", p.stream, p.node_id,
                           p.seq.value(), p.confirmed.value(),
                           p.lag_events ? fmt::format("{}", *p.lag_events) : "?", p.state);
    }
    return out;
}

std::string topology_log_text(const proto::TopologyReply& t) {
    std::string out = fmt::format("{:<16}{} events, {} refused\n", "$topology", t.topology_events,
                                  t.topology_refused);
    if (!t.last_refusal.empty()) out += fmt::format("{:<16}{}\n", "last refused", t.last_refusal);
    for (const proto::TopologySubLog& s : t.sublogs) {
        out += fmt::format("{:<15} ~{}  {} events, the last at {}\n", s.node,
                           instance_hex(s.instance), s.events, rfc3339(s.last_ns.value()));
    }
    return out;
}

// One field of an event: its name, and its value as text and as JSON.
struct Field {
    const char* name;
    std::string text;
    std::string json;
};

Field number(const char* name, std::uint64_t value) {
    return {name, fmt::format("{}", value), fmt::format("{}", value)};
}

Field word(const char* name, const std::string& value) {
    return {name, value, json_string(value)};
}

Field nodes(const char* name, const std::vector<core::NodeId>& ids) {
    std::string text;
    std::string json = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        text += (i == 0 ? "" : ",") + ids[i].value();
        json += (i == 0 ? "" : ",") + json_string(ids[i].value());
    }
    return {name, text, json + "]"};
}

// A policy's fields: redundancy, acks and the retention limits (0: none).
std::vector<Field> policy_fields(const core::StreamPolicy& p) {
    const std::string acks = p.acks.kind == core::Acks::Kind::majority ? "majority"
                             : p.acks.kind == core::Acks::Kind::all    ? "all"
                                                                    : std::to_string(p.acks.count);
    return {
        word("redundancy", p.redundancy == core::Redundancy::eventual ? "eventual" : "immediate"),
        word("acks", acks), number("retention_events_max", p.retention.events_max),
        number("retention_bytes_max", p.retention.bytes_max),
        number("retention_age_ms_max", p.retention.age_ms_max)};
}

std::vector<Field> with_policy(std::vector<Field> fields, const core::StreamPolicy& p) {
    for (Field& f : policy_fields(p)) fields.push_back(std::move(f));
    return fields;
}

std::vector<Field> fields_of(const core::TopologyBody& body) {
    namespace topo = core::topo;
    return std::visit(
        [](const auto& e) -> std::vector<Field> {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, topo::NodeStarted>) {
                return {number("incarnation", e.incarnation),
                        {"witness", e.witness ? "yes" : "no", e.witness ? "true" : "false"}};
            } else if constexpr (std::is_same_v<T, topo::Voted>) {
                return {word("group", e.group), number("epoch", e.epoch.value()),
                        word("candidate", e.candidate.value())};
            } else if constexpr (std::is_same_v<T, topo::MasterElected>) {
                return {word("group", e.group), number("epoch", e.epoch.value()),
                        nodes("voters", e.voters)};
            } else if constexpr (std::is_same_v<T, topo::SteppedDown>) {
                return {word("group", e.group),
                        number("epoch", e.epoch.value()),
                        {"reason", json_string(e.reason), json_string(e.reason)}};
            } else if constexpr (std::is_same_v<T, topo::StreamCompleted>) {
                return {word("stream", e.stream), number("epoch", e.epoch.value()),
                        number("seq", e.seq.value())};
            } else if constexpr (std::is_same_v<T, topo::StreamCreated> ||
                                 std::is_same_v<T, topo::StreamPolicyChanged>) {
                return with_policy({word("stream", e.stream), number("epoch", e.epoch.value())},
                                   e.policy);
            } else if constexpr (std::is_same_v<T, topo::StreamDeleted>) {
                return {word("stream", e.stream), number("epoch", e.epoch.value())};
            } else {
                static_assert(std::is_same_v<T, topo::SuffixQuarantined>);
                return {word("stream", e.stream), number("epoch", e.epoch.value()),
                        number("after_seq", e.after_seq.value()), number("count", e.count)};
            }
        },
        body);
}

}  // namespace

std::string topology_text(const proto::TopologyReply& t) {
    std::string out =
        fmt::format("{:<16}{} ({}, epoch {})\n", "node", t.node_id, t.role, t.epoch.value());
    out += fmt::format("{:<16}{}\n", "master", t.master.empty() ? "not known" : t.master);
    out += fmt::format("{:<16}{}\n", "state", t.state);
    for (const proto::TopologyGroup& g : t.groups) {
        out += fmt::format("{:<16}{}\n", "group", group_line(g));
    }
    for (core::Epoch e : t.conflicts) {
        out += fmt::format("{:<16}epoch {} was claimed by two masters\n", "CONFLICT", e.value());
    }
    out += "\n" + members_text(t);
    if (!t.positions_source.empty()) out += "\n" + positions_text(t);
    if (t.role != "single") out += "\n" + topology_log_text(t);
    return out;
}

std::string topology_json(const proto::TopologyReply& t) {
    std::string out = fmt::format(
        "{{\"node\":{},\"role\":{},\"epoch\":{},\"master\":{},\"state\":{},\"members\":[",
        json_string(t.node_id), json_string(t.role), t.epoch.value(), opt_json(t.master),
        json_string(t.state));
    for (std::size_t i = 0; i < t.members.size(); ++i) {
        const proto::TopologyMember& m = t.members[i];
        out += fmt::format(
            "{}{{\"node\":{},\"address\":{},\"role\":{},\"self\":{},\"linked\":{},"
            "\"heard_ms\":{},\"instance\":{},\"incarnation\":{},\"voted\":{},\"link\":{}}}",
            i == 0 ? "" : ",", json_string(m.node_id), opt_json(m.address), json_string(m.role),
            m.self, m.linked, opt_json(m.heard_ms),
            m.instance == 0 ? "null" : json_string(instance_hex(m.instance)), m.incarnation,
            m.voted.value(), opt_json(m.link));
    }
    out += "],\"groups\":[";
    for (std::size_t i = 0; i < t.groups.size(); ++i) {
        const proto::TopologyGroup& g = t.groups[i];
        out += fmt::format("{}{{\"group\":{},\"epoch\":{},\"master\":{},\"why\":{}}}",
                           i == 0 ? "" : ",", json_string(g.name), g.epoch.value(),
                           opt_json(g.master), opt_json(g.why));
    }
    out += fmt::format("],\"positions_source\":{},\"positions_total\":{},\"positions\":[",
                       opt_json(t.positions_source), t.positions_total);
    for (std::size_t i = 0; i < t.positions.size(); ++i) {
        const proto::TopologyPosition& p = t.positions[i];
        out += fmt::format(
            "{}{{\"stream\":{},\"node\":{},\"seq\":{},\"confirmed\":{},\"lag_events\":{},"
            "\"state\":{}}}",
            i == 0 ? "" : ",", json_string(p.stream), json_string(p.node_id), p.seq.value(),
            p.confirmed.value(), opt_json(p.lag_events), json_string(p.state));
    }
    out += fmt::format(
        "],\"topology_events\":{},\"topology_refused\":{},\"last_refusal\":{},"
        "\"sublogs\":[",
        t.topology_events, t.topology_refused, opt_json(t.last_refusal));
    for (std::size_t i = 0; i < t.sublogs.size(); ++i) {
        const proto::TopologySubLog& s = t.sublogs[i];
        out += fmt::format("{}{{\"node\":{},\"instance\":{},\"events\":{},\"last\":\"{}\"}}",
                           i == 0 ? "" : ",", json_string(s.node),
                           json_string(instance_hex(s.instance)), s.events,
                           rfc3339(s.last_ns.value()));
    }
    out += "],\"conflicts\":[";
    for (std::size_t i = 0; i < t.conflicts.size(); ++i) {
        out += fmt::format("{}{}", i == 0 ? "" : ",", t.conflicts[i].value());
    }
    return out + "]}";
}

std::string topology_event_text(core::Seq seq, const core::TopologyEvent& event) {
    std::string out =
        fmt::format("{:>6}  {}  {}/{}  {}", seq.value(), rfc3339(event.timestamp.value()),
                    event.key.author.node.value(), event.key.seq,
                    core::topology_kind_name(core::topology_kind(event.body)));
    const char* sep = "  ";
    for (const Field& f : fields_of(event.body)) {
        out += fmt::format("{}{}={}", sep, f.name, f.text);
        sep = " ";
    }
    return out;
}

std::string topology_event_json(core::Seq seq, const core::TopologyEvent& event) {
    std::string out = fmt::format(
        "{{\"seq\":{},\"ts\":\"{}\",\"author\":{},\"instance\":{},\"author_seq\":{},\"kind\":\"{}"
        "\"",
        seq.value(), rfc3339(event.timestamp.value()), json_string(event.key.author.node.value()),
        json_string(instance_hex(event.key.author.instance)), event.key.seq,
        core::topology_kind_name(core::topology_kind(event.body)));
    for (const Field& f : fields_of(event.body)) out += fmt::format(",\"{}\":{}", f.name, f.json);
    return out + "}";
}

}  // namespace spirit::daemon::cli
