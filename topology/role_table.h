// topology/role_table.h: who is master of a replica group, in which epoch.
//
// Until elections exist, the master is named by configuration (it seeds the
// table) or by an operator (designate), and the table spreads between nodes
// as a register ordered by `supersedes`: every hello and heartbeat carries
// the sender's role, and a node adopts any role that supersedes its own.
// The rules that make the epochs safe to build on:
// - A node masters only an epoch it created itself (claim: the highest
//   epoch it knows + 1) and recorded durably before using it. A node that
//   learns it was named master of an epoch it did not create (an operator's
//   designation, or its own previous life before its data dir was wiped)
//   claims the next one. So no epoch ever has two masters that both wrote.
// - A node that knows a higher role stops being master at once (fencing).
// - A fresh node (a new or wiped data dir), and a node about to claim an
//   epoch (its record names it master), first hear the roles of a majority
//   of the group, since their records may be behind (a wiped or restored
//   data dir). Only if none of them knows an epoch is the group new, and
//   the configured master claims epoch 1.
//
// Pure and deterministic: no IO, clock or threads. The daemon persists what
// take_ready() asks for, then calls persisted(); it announces role() to
// peers whenever it changed.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "core/ids.h"
#include "core/node_id.h"

namespace spirit::topology {

struct Role {
    core::Epoch epoch{0};  // Epoch{0}: before any master claimed an epoch
    core::NodeId master;

    friend bool operator==(const Role&, const Role&) = default;
};

// Whether `a` supersedes `b`: a higher epoch; at an equal epoch the smaller
// master id (only concurrent designations make such a tie; the order makes
// every node settle on the same role).
bool supersedes(const Role& a, const Role& b);

// Whether the data dir held any state when the node started.
enum class Freshness : std::uint8_t { recorded, fresh };

class RoleTable {
 public:
    struct Options {
        core::NodeId self;
        std::vector<core::NodeId> members;  // the group's data nodes, self included
        core::NodeId seed_master;           // the configured master
    };

    // `persisted`: the role this node recorded last (nullopt: none). A node
    // without a recorded role but with data (`recorded`) was written under
    // the fixed master of epoch 1. REQUIRES: self and seed_master are members.
    RoleTable(Options options, std::optional<Role> persisted, Freshness freshness);

    // A member's hello or heartbeat: the role it knows.
    void observe(const core::NodeId& from, const Role& role);
    // An operator names the next master: epoch + 1 with `master` (this node
    // itself claims at once). REQUIRES: master is a member; !learning().
    void designate(const core::NodeId& master);
    // The daemon recorded `role` durably (what take_ready() asked for).
    void persisted(const Role& role);

    // A role to record durably before it is used or announced.
    std::optional<Role> take_persist();

    const Role& role() const { return role_; }
    // This node masters role().epoch: it claimed it and recorded it.
    bool is_master() const;
    // The master named by role(), if one is and it is not still being learnt.
    std::optional<core::NodeId> master() const;
    // A fresh node, or one about to claim, that has not yet heard from a majority.
    bool learning() const { return learning_; }
    const core::NodeId& self() const { return options_.self; }
    const std::vector<core::NodeId>& members() const { return options_.members; }

 private:
    void adopt(const Role& role);
    void claim();
    void finish_learning_if_heard();

    Options options_;
    Role role_;
    std::optional<Role> persisted_;
    std::optional<Role> to_persist_;
    std::optional<core::Epoch> mastered_;  // the epoch this node claimed and recorded
    bool learning_ = false;
    std::map<core::NodeId, Role> heard_;  // while learning: each member's role
};

}  // namespace spirit::topology
