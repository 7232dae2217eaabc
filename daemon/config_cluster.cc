// daemon/config_cluster.cc: reads [cluster] and its [[cluster.members]],
// and the rules between them and the rest of the config: this node is a
// member, ids are unique, every member has a public key, a data member
// exists, the node has a key file, timeouts fit together, and immediate
// streams ask for at least a majority of the data members.
#include <algorithm>

#include "core/assert.h"
#include "daemon/config_reader.h"

namespace spirit::daemon::config_detail {

namespace {

constexpr std::pair<std::string_view, topology::MemberRole> member_roles[] = {
    {"data", topology::MemberRole::data},
    {"witness", topology::MemberRole::witness},
};

}  // namespace

Result<void> Reader::read_cluster(const Entry& e, Config::Cluster& cluster) const {
    const Field fields[] = {
        {"name",
         [&](const Entry& f) -> Result<void> {
             auto name = string_of(f);
             if (!name) return core::Unexpected{std::move(name).error()};
             if (name->empty() || name->size() > 64 ||
                 std::find_if_not(name->begin(), name->end(), is_node_id_char) != name->end()) {
                 return fail(f, "expected 1 to 64 bytes of letters, digits and _ . -");
             }
             cluster.name = std::string{*name};
             return {};
         }},
        {"listen",
         [&](const Entry& f) -> Result<void> {
             auto text = string_of(f);
             if (!text) return core::Unexpected{std::move(text).error()};
             if (text->empty()) {
                 cluster.listen.reset();
                 return {};
             }
             auto host_port = parse_host_port(*text);
             if (!host_port) return fail(f, host_port.error().detail);
             cluster.listen = std::move(*host_port);
             return {};
         }},
        {"master",
         [&](const Entry& f) -> Result<void> {
             return fail(f,
                         "this key was removed: the master is elected (docs/topology.md); to "
                         "move it, run spirit cluster set-master NODE");
         }},
        {"peers",
         [&](const Entry& f) -> Result<void> {
             return fail(f,
                         "[[cluster.peers]] was replaced by [[cluster.members]]: list every "
                         "node, this one included, with id, address, public_key and role "
                         "(conf/spirit.toml)");
         }},
        {"members", [&](const Entry& f) { return read_members(f, cluster.members); }},
        integer("ack_timeout_ms", cluster.ack_timeout_ms, 1, 600'000),
        integer("heartbeat_ms", cluster.heartbeat_ms, 10, 60'000),
        integer("election_timeout_ms", cluster.election_timeout_ms, 30, 600'000),
        integer("peer_timeout_ms", cluster.peer_timeout_ms, 20, 600'000),
        integer("reconnect_ms_min", cluster.reconnect_ms_min, 1, 60'000),
        integer("reconnect_ms_max", cluster.reconnect_ms_max, 1, 600'000),
        size("replication_window_bytes", cluster.replication_window_bytes, 64 << 10,
             std::uint64_t{1} << 30),
    };
    return walk(e, fields);
}

Result<void> Reader::read_members(const Entry& e, std::vector<Config::Member>& members) const {
    const auto* array = e.node->as_array();
    if (array == nullptr) {
        return fail(e, fmt::format("expected an array of tables ([[cluster.members]]), got {}",
                                   describe(*e.node)));
    }
    std::vector<Config::Member> result;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = (*array)[i];
        Entry item{fmt::format("{}[{}]", e.path, i), &element.source(), &element};
        SPIRIT_TRY(read_member(item, result.emplace_back()));
    }
    members = std::move(result);
    return {};
}

Result<void> Reader::read_member(const Entry& item, Config::Member& member) const {
    bool has_id = false;
    bool has_address = false;
    bool has_key = false;
    const Field fields[] = {
        {"id",
         [&](const Entry& f) -> Result<void> {
             auto id = string_of(f);
             if (!id) return core::Unexpected{std::move(id).error()};
             if (id->empty() || id->size() > 64 ||
                 std::find_if_not(id->begin(), id->end(), is_node_id_char) != id->end()) {
                 return fail(f, "expected 1 to 64 bytes of letters, digits and _ . -");
             }
             member.id = std::string{*id};
             has_id = true;
             return {};
         }},
        {"address",
         [&](const Entry& f) -> Result<void> {
             auto text = string_of(f);
             if (!text) return core::Unexpected{std::move(text).error()};
             auto host_port = parse_host_port(*text);
             if (!host_port) return fail(f, host_port.error().detail);
             member.address = std::move(*host_port);
             has_address = true;
             return {};
         }},
        {"public_key",
         [&](const Entry& f) -> Result<void> {
             auto text = string_of(f);
             if (!text) return core::Unexpected{std::move(text).error()};
             auto key = core::parse_public_key(*text);
             if (!key) return fail(f, key.error().detail);
             member.public_key = *key;
             has_key = true;
             return {};
         }},
        choice("role", member.role, Choices<topology::MemberRole>(member_roles)),
    };
    SPIRIT_TRY(walk(item, fields));
    if (!has_id || !has_address || !has_key) {
        return fail(item, "every [[cluster.members]] entry needs id, address and public_key");
    }
    return {};
}

Result<void> Reader::check_members(const toml::source_region& at, Config& config) const {
    Config::Cluster& c = config.cluster;
    std::vector<std::string> ids;
    bool self = false;
    bool data = false;
    c.peers.clear();
    for (const Config::Member& m : c.members) {
        if (std::find(ids.begin(), ids.end(), m.id) != ids.end()) {
            return fail(at, "cluster.members", fmt::format("node id {:?} appears twice", m.id));
        }
        ids.push_back(m.id);
        self = self || m.id == config.node.id;
        data = data || m.role == topology::MemberRole::data;
        if (m.id != config.node.id) c.peers.push_back(Config::Peer{m.id, m.address});
    }
    if (!self) {
        return fail(
            at, "cluster.members",
            fmt::format("node.id {:?} is not a member; list this node too", config.node.id));
    }
    if (c.members.size() < 2) {
        return fail(at, "cluster.members",
                    "a cluster needs at least two members (remove them to run the node alone)");
    }
    if (!data) return fail(at, "cluster.members", "no member has role \"data\"");
    if (!c.listen) return fail(at, "cluster.listen", "required in a cluster");
    if (config.node.key_file.empty()) {
        return fail(at, "node.key_file",
                    "required in a cluster: the node signs its $topology events with it "
                    "(make one with spirit keygen --out FILE)");
    }
    return {};
}

Result<void> Reader::check_cluster(const toml::table& root, Config& config) const {
    const Config::Cluster& c = config.cluster;
    const toml::node* table = root.get("cluster");
    const toml::source_region& at = table != nullptr ? table->source() : root.source();
    if (!c.members.empty()) SPIRIT_TRY(check_members(at, config));
    if (c.peer_timeout_ms <= c.heartbeat_ms) {
        return fail(at, "cluster.peer_timeout_ms",
                    fmt::format("{} must be more than heartbeat_ms ({})", c.peer_timeout_ms,
                                c.heartbeat_ms));
    }
    if (c.election_timeout_ms < 3 * c.heartbeat_ms) {
        return fail(at, "cluster.election_timeout_ms",
                    fmt::format("{} must be at least 3 x heartbeat_ms ({})", c.election_timeout_ms,
                                c.heartbeat_ms));
    }
    if (c.reconnect_ms_max < c.reconnect_ms_min) {
        return fail(at, "cluster.reconnect_ms_max",
                    fmt::format("{} is less than reconnect_ms_min ({})", c.reconnect_ms_max,
                                c.reconnect_ms_min));
    }
    // Immediate streams need a majority of copies, so that any majority of
    // replicas holds every acknowledged write.
    const std::size_t majority = config.replicas() / 2 + 1;
    for (std::size_t i = 0; i < config.streams.size(); ++i) {
        const core::StreamPolicy& p = config.streams[i].policy;
        if (p.redundancy != core::Redundancy::immediate) continue;
        if (p.acks.kind == core::Acks::Kind::count &&
            (p.acks.count < majority || p.acks.count > config.replicas())) {
            const toml::node* streams = root.get("streams");
            return fail(streams != nullptr ? streams->source() : root.source(),
                        fmt::format("streams[{}].acks", i),
                        fmt::format("{} copies for an immediate stream; with {} data members it "
                                    "must be from {} (a majority) to {}",
                                    p.acks.count, config.replicas(), majority, config.replicas()));
        }
    }
    return {};
}

}  // namespace spirit::daemon::config_detail

namespace spirit::daemon {

const Config::Member& Config::self_member() const {
    auto it = std::find_if(cluster.members.begin(), cluster.members.end(),
                           [&](const Member& m) { return m.id == node.id; });
    SPIRIT_ASSERT(it != cluster.members.end());
    return *it;
}

bool Config::is_witness() const {
    return in_cluster() && self_member().role == topology::MemberRole::witness;
}

topology::Members Config::group() const {
    SPIRIT_ASSERT(in_cluster());
    std::vector<topology::Member> members;
    for (const Member& m : cluster.members) members.push_back({core::NodeId(m.id), m.role});
    return topology::Members(std::move(members));
}

std::size_t Config::replicas() const {
    if (!in_cluster()) return 1;
    return static_cast<std::size_t>(
        std::count_if(cluster.members.begin(), cluster.members.end(),
                      [](const Member& m) { return m.role == topology::MemberRole::data; }));
}

}  // namespace spirit::daemon
