// topology/quorum.h: counting copies. How many durable copies an immediate
// publish waits for, how many copies a new master must hear from before it
// adopts the highest, and the highest seq that enough copies hold.
//
// Pure functions of their arguments (etcd raft's quorum/ in spirit's terms).
#pragma once

#include <cstddef>
#include <span>

#include "core/ids.h"
#include "core/stream_policy.h"

namespace spirit::topology {

// ⌊n/2⌋ + 1 of `replicas` copies. REQUIRES: replicas >= 1.
std::size_t majority(std::size_t replicas);

// Copies (the master's included) a publish of a stream with `policy` waits
// for: 1 for eventual streams; majority, all, or the count for immediate
// ones, capped at `replicas`. REQUIRES: replicas >= 1.
std::size_t copies_required(const core::StreamPolicy& policy, std::size_t replicas);

// Reports (the new master's own included) a new master needs before it
// adopts the highest copy of a stream with `policy`: replicas - acks + 1,
// so that the reports meet every set of `acks` copies and hence hold every
// acknowledged immediate write. 1 for eventual streams, whose master adopts
// the highest copy it can reach. REQUIRES: replicas >= 1.
std::size_t completion_reports_required(const core::StreamPolicy& policy, std::size_t replicas);

// Reports a new master needs before it adopts the highest copy of every
// stream of its group at once: replicas - majority + 1, the most any
// immediate stream needs (its acks is at least a majority). 2 of 3, 3 of
// 5, and 1 of 2 (two data nodes and a witness: the survivor's copy holds
// every write acknowledged by both). REQUIRES: replicas >= 1.
std::size_t completion_quorum(std::size_t replicas);

// The highest seq held by at least `copies` of `positions` (each a copy's
// verified durable position): the `copies`-th highest. Seq{0} when there
// are fewer positions than copies. REQUIRES: copies >= 1.
core::Seq watermark(std::span<const core::Seq> positions, std::size_t copies);

}  // namespace spirit::topology
