// topology/members.h: the members of a replica group as configured, and
// the arithmetic elections do on them: who votes, how many make a majority,
// and which data node may be the candidate of which epoch.
//
// Epochs are ballots: epoch e belongs to data member number e mod D (the
// data members sorted by id, D of them), and only that member may stand in
// it. Two masters of one epoch are then impossible by construction, even
// if a voter forgot a vote (a wiped data dir), and a candidate's next epoch
// is the smallest of its own above every epoch it knows.
//
// Pure and deterministic; a value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/ids.h"
#include "core/node_id.h"

namespace spirit::topology {

// A member's part in the group. On the wire and in config: never renumber.
enum class MemberRole : std::uint8_t {
    data = 0,     // holds every stream of the group; may be master
    witness = 1,  // votes and keeps `$topology`; holds no data streams
};

struct Member {
    core::NodeId id;
    MemberRole role = MemberRole::data;
    friend bool operator==(const Member&, const Member&) = default;
};

class Members {
 public:
    // REQUIRES: ids are unique; at least one data member.
    explicit Members(std::vector<Member> members);

    // Every member, sorted by id.
    const std::vector<Member>& all() const { return all_; }
    // The data members, sorted by id.
    const std::vector<core::NodeId>& data() const { return data_; }
    std::size_t voters() const { return all_.size(); }
    // Votes a candidate needs: ⌊voters/2⌋ + 1.
    std::size_t majority() const { return all_.size() / 2 + 1; }

    bool contains(const core::NodeId& id) const;
    bool is_data(const core::NodeId& id) const;
    std::optional<MemberRole> role_of(const core::NodeId& id) const;

    // The data member that may stand in `epoch`. REQUIRES: epoch >= 1.
    const core::NodeId& candidate_of(core::Epoch epoch) const;
    // The smallest epoch above `after` that `candidate` may stand in.
    // REQUIRES: is_data(candidate).
    core::Epoch next_epoch(const core::NodeId& candidate, core::Epoch after) const;

    friend bool operator==(const Members&, const Members&) = default;

 private:
    std::vector<Member> all_;
    std::vector<core::NodeId> data_;
};

}  // namespace spirit::topology
