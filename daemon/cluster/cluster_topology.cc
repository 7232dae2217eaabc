// The Cluster's part of `spirit topology` (core/protocol_client.h,
// TopologyReply): this node's role, every member as this node sees it, the
// group's master as its view of `$topology` says, and what `$topology` holds.
#include <algorithm>

#include <fmt/format.h>

#include "daemon/cluster/cluster.h"

namespace spirit::daemon {

namespace proto = core::protocol;

namespace {

// Why the group has no master, as the view says (the group's epoch is
// `role.epoch`, its master empty).
std::string no_master_why(const topology::View& view, const topology::Role& role) {
    if (role.epoch == core::Epoch{0}) return "no master elected yet";
    const auto stepped = view.master_of(role.epoch);
    return fmt::format("{}, the master of epoch {}, stepped down; no master elected since",
                       stepped ? stepped->value() : "its master", role.epoch.value());
}

// The member's newest sub-log (the one whose last event is the latest).
const proto::TopologySubLog* newest_sublog(const std::vector<proto::TopologySubLog>& sublogs,
                                           const std::string& node) {
    const proto::TopologySubLog* newest = nullptr;
    for (const proto::TopologySubLog& s : sublogs) {
        if (s.node == node && (newest == nullptr || s.last_ns > newest->last_ns)) newest = &s;
    }
    return newest;
}

}  // namespace

void Cluster::describe_topology(proto::TopologyReply& reply) const {
    reply.role = role_name();
    reply.epoch = epoch();
    const auto known = known_master();
    reply.master = known ? known->value() : "";
    reply.state = state();
    if (!elector_) return;  // not started
    const topology::View& view = elector_->view();
    std::vector<proto::TopologySubLog> sublogs = topology_log_->sublogs();
    for (const Config::Member& m : config_.cluster.members) {
        const core::NodeId id(m.id);
        proto::TopologyMember member;
        member.node_id = m.id;
        member.address = net::describe(net::TcpEndpoint{m.address.host, m.address.port});
        member.role = m.role == topology::MemberRole::witness ? "witness" : "data";
        member.self = id == self_;
        member.linked = member.self || links_->linked(id);
        if (!member.self) {
            member.heard_ms = links_->heard_ago_ms(id);
            member.link = links_->state(id);
        }
        if (const proto::TopologySubLog* s = newest_sublog(sublogs, m.id)) {
            member.instance = s->instance;
            member.incarnation = view.incarnation(core::TopologyAuthor{id, s->instance});
        }
        member.voted = view.voted_by(id);
        reply.members.push_back(std::move(member));
    }
    std::sort(reply.members.begin(), reply.members.end(),
              [](const auto& a, const auto& b) { return a.node_id < b.node_id; });
    if (reply.members.size() > proto::topology_members_max) {
        reply.members.resize(proto::topology_members_max);
    }
    const topology::Role group = view.role();
    reply.groups.push_back({topology::default_group, group.epoch, group.master.value(),
                            group.master.empty() ? no_master_why(view, group) : ""});
    if (sublogs.size() > proto::topology_sublogs_max) sublogs.resize(proto::topology_sublogs_max);
    reply.sublogs = std::move(sublogs);
    reply.topology_events = topology_log_->events();
    reply.topology_refused = topology_log_->refused();
    reply.last_refusal = topology_log_->last_refusal();
    for (core::Epoch e : view.conflicts()) {
        if (reply.conflicts.size() == proto::topology_conflicts_max) break;
        reply.conflicts.push_back(e);
    }
}

std::vector<proto::TopologyPosition> Cluster::replica_positions() const {
    return master_ ? master_->replica_positions() : std::vector<proto::TopologyPosition>{};
}

}  // namespace spirit::daemon
