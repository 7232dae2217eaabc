// The TopologyReply's codec (core/protocol_client.h, docs/protocol.md,
// "Topology"): what a node knows of its cluster's members, masters, copies
// and `$topology`, in wire order. Each list is flat (message, list, item),
// far inside the unpacker's nesting limit.
#include "core/limits.h"
#include "core/protocol_codec.h"

namespace spirit::core::protocol::detail {

namespace {

constexpr std::size_t node_id_bytes_max = 64;  // core/node_id.h
constexpr std::size_t role_bytes_max = 16;
constexpr std::size_t address_bytes_max = 512;

TopologyMember read_member(Reader& r) {
    TopologyMember m;
    m.node_id = r.owned_text("node_id", node_id_bytes_max);
    m.address = r.owned_text("address", address_bytes_max);
    m.role = r.owned_text("role", role_bytes_max);
    m.self = r.u64("self") != 0;
    m.linked = r.u64("linked") != 0;
    m.heard_ms = r.opt_u64("heard_ms");
    m.instance = r.u64("instance");
    m.incarnation = r.u64("incarnation");
    m.voted = Epoch{r.u64("voted")};
    m.link = r.owned_text("link");
    return m;
}

TopologyPosition read_position(Reader& r) {
    TopologyPosition p;
    p.node_id = r.owned_text("node_id", node_id_bytes_max);
    p.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    p.seq = Seq{r.u64("seq")};
    p.confirmed = Epoch{r.u64("confirmed")};
    p.lag_events = r.opt_u64("lag_events");
    p.state = r.owned_text("state", role_bytes_max);
    return p;
}

void read_lists(Reader& r, TopologyReply& m) {
    const List members = r.list("members", topology_members_max);
    r.items(members, [&](Reader& item) { m.members.push_back(read_member(item)); });
    const List groups = r.list("groups", topology_groups_max);
    r.items(groups, [&](Reader& g) {
        TopologyGroup group;
        group.name = g.owned_text("name", limits::stream_name_bytes_max);
        group.epoch = Epoch{g.u64("epoch")};
        group.master = g.owned_text("master", node_id_bytes_max);
        group.why = g.owned_text("why");
        m.groups.push_back(std::move(group));
    });
    m.positions_source = r.owned_text("positions_source", role_bytes_max);
    const List positions = r.list("positions", topology_positions_max);
    r.items(positions, [&](Reader& item) { m.positions.push_back(read_position(item)); });
    m.positions_total = r.u64("positions_total");
    const List sublogs = r.list("sublogs", topology_sublogs_max);
    r.items(sublogs, [&](Reader& s) {
        TopologySubLog sublog;
        sublog.node = s.owned_text("node", node_id_bytes_max);
        sublog.instance = s.u64("instance");
        sublog.events = s.u64("events");
        sublog.last_ns = TimestampNs{s.u64("last_ns")};
        m.sublogs.push_back(std::move(sublog));
    });
}

}  // namespace

TopologyReply read_topology_reply(Reader& r) {
    TopologyReply m;
    m.request_id = r.u64("request_id");
    m.node_id = r.owned_text("node_id", node_id_bytes_max);
    m.role = r.owned_text("role", role_bytes_max);
    m.epoch = Epoch{r.u64("epoch")};
    m.master = r.owned_text("master", node_id_bytes_max);
    m.state = r.owned_text("state");
    read_lists(r, m);
    m.topology_events = r.u64("topology_events");
    m.topology_refused = r.u64("topology_refused");
    m.last_refusal = r.owned_text("last_refusal");
    for (std::uint64_t e : r.u64s("conflicts", topology_conflicts_max)) {
        m.conflicts.push_back(Epoch{e});
    }
    return m;
}

void pack_topology_reply(Packer& pk, const TopologyReply& m) {
    pack_head(pk, Type::topology_reply, 16);
    pk.pack_uint64(m.request_id);
    pack_text(pk, m.node_id);
    pack_text(pk, m.role);
    pk.pack_uint64(m.epoch.value());
    pack_text(pk, m.master);
    pack_text(pk, m.state);
    pk.pack_array(static_cast<std::uint32_t>(m.members.size()));
    for (const TopologyMember& member : m.members) {
        pk.pack_array(10);
        pack_text(pk, member.node_id);
        pack_text(pk, member.address);
        pack_text(pk, member.role);
        pk.pack_uint8(member.self ? 1 : 0);
        pk.pack_uint8(member.linked ? 1 : 0);
        pack_optional(pk, member.heard_ms, [&](std::uint64_t ms) { pk.pack_uint64(ms); });
        pk.pack_uint64(member.instance);
        pk.pack_uint64(member.incarnation);
        pk.pack_uint64(member.voted.value());
        pack_text(pk, member.link);
    }
    pk.pack_array(static_cast<std::uint32_t>(m.groups.size()));
    for (const TopologyGroup& g : m.groups) {
        pk.pack_array(4);
        pack_text(pk, g.name);
        pk.pack_uint64(g.epoch.value());
        pack_text(pk, g.master);
        pack_text(pk, g.why);
    }
    pack_text(pk, m.positions_source);
    pk.pack_array(static_cast<std::uint32_t>(m.positions.size()));
    for (const TopologyPosition& p : m.positions) {
        pk.pack_array(6);
        pack_text(pk, p.node_id);
        pack_text(pk, p.stream);
        pk.pack_uint64(p.seq.value());
        pk.pack_uint64(p.confirmed.value());
        pack_optional(pk, p.lag_events, [&](std::uint64_t lag) { pk.pack_uint64(lag); });
        pack_text(pk, p.state);
    }
    pk.pack_uint64(m.positions_total);
    pk.pack_array(static_cast<std::uint32_t>(m.sublogs.size()));
    for (const TopologySubLog& s : m.sublogs) {
        pk.pack_array(4);
        pack_text(pk, s.node);
        pk.pack_uint64(s.instance);
        pk.pack_uint64(s.events);
        pk.pack_uint64(s.last_ns.value());
    }
    pk.pack_uint64(m.topology_events);
    pk.pack_uint64(m.topology_refused);
    pack_text(pk, m.last_refusal);
    pk.pack_array(static_cast<std::uint32_t>(m.conflicts.size()));
    for (Epoch e : m.conflicts) pk.pack_uint64(e.value());
}

}  // namespace spirit::core::protocol::detail
