#include "topology/role_table.h"

#include <algorithm>

#include "core/assert.h"
#include "topology/quorum.h"

namespace spirit::topology {

bool supersedes(const Role& a, const Role& b) {
    if (a.epoch != b.epoch) return a.epoch > b.epoch;
    if (a.master.empty() || b.master.empty()) return false;
    return a.master < b.master;
}

RoleTable::RoleTable(Options options, std::optional<Role> persisted, Freshness freshness)
    : options_(std::move(options)) {
    const auto& m = options_.members;
    SPIRIT_ASSERT(std::find(m.begin(), m.end(), options_.self) != m.end());
    SPIRIT_ASSERT(std::find(m.begin(), m.end(), options_.seed_master) != m.end());
    if (persisted) {
        role_ = *persisted;
        persisted_ = persisted;
    } else if (freshness == Freshness::recorded) {
        // Data from before roles were recorded: all of it is epoch 1's.
        role_ = Role{core::Epoch{1}, options_.seed_master};
        to_persist_ = role_;
    } else {
        role_ = Role{core::Epoch{0}, options_.seed_master};
    }
    // A node that knows nothing, or that will claim a new epoch (a restart is
    // a new life: it never writes in an epoch it used before), first hears
    // the roles of a majority: its records may be older than the group's.
    if (!persisted && freshness == Freshness::recorded && role_.master != options_.self) return;
    if (persisted && role_.master != options_.self) return;
    learning_ = true;
    to_persist_.reset();
    heard_[options_.self] = role_;
    finish_learning_if_heard();
}

bool RoleTable::is_master() const {
    return !learning_ && mastered_ && *mastered_ == role_.epoch && role_.master == options_.self;
}

std::optional<core::NodeId> RoleTable::master() const {
    if (learning_ || role_.master.empty()) return std::nullopt;
    return role_.master;
}

void RoleTable::observe(const core::NodeId& from, const Role& role) {
    const auto& m = options_.members;
    if (std::find(m.begin(), m.end(), from) == m.end()) return;  // not of this group
    if (learning_) heard_[from] = role;
    if (supersedes(role, role_)) {
        if (role.master == options_.self && !learning_) {
            // Named master of an epoch this node did not create: take the next.
            role_ = role;
            claim();
        } else {
            adopt(role);
        }
    }
    finish_learning_if_heard();
}

void RoleTable::designate(const core::NodeId& master) {
    const auto& m = options_.members;
    SPIRIT_ASSERT(std::find(m.begin(), m.end(), master) != m.end());
    SPIRIT_ASSERT(!learning_);
    if (master == options_.self) return claim();
    adopt(Role{role_.epoch.next(), master});
}

void RoleTable::persisted(const Role& role) {
    if (!persisted_ || supersedes(role, *persisted_)) persisted_ = role;
    if (role == role_ && role.master == options_.self && !learning_) mastered_ = role.epoch;
}

std::optional<Role> RoleTable::take_persist() {
    return std::exchange(to_persist_, std::nullopt);
}

void RoleTable::adopt(const Role& role) {
    SPIRIT_ASSERT(role.master != options_.self || learning_);
    role_ = role;
    if (!learning_) to_persist_ = role_;
}

void RoleTable::claim() {
    SPIRIT_ASSERT(!learning_);
    role_ = Role{role_.epoch.next(), options_.self};
    to_persist_ = role_;
}

void RoleTable::finish_learning_if_heard() {
    if (!learning_ || heard_.size() < majority(options_.members.size())) return;
    learning_ = false;
    heard_.clear();
    if (role_.epoch == core::Epoch{0}) role_ = Role{core::Epoch{0}, options_.seed_master};
    // The group is new (nobody knew an epoch), or this node learnt the
    // current role; as its master it takes a new epoch either way.
    if (role_.master == options_.self) {
        claim();
    } else {
        to_persist_ = role_;
    }
}

}  // namespace spirit::topology
