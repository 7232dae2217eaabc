// daemon/cluster/node_record.h: what a node records about itself in the
// store's `node` database (docs/format.md, "node"): the role it knows
// (epoch and master) and whether its copies have caught up since its data
// dir was created.
#pragma once

#include <optional>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"
#include "topology/role_table.h"

namespace spirit::daemon {

// Keys in the node database.
inline constexpr std::string_view node_key_role = "role";
inline constexpr std::string_view node_key_caught_up = "caught_up";

// Version byte, epoch (u64 big-endian), master id bytes.
core::Bytes encode_role(const topology::Role& role);
// errc::corrupt naming the key when the bytes are not a role record.
[[nodiscard]] core::Result<topology::Role> decode_role(core::ByteView bytes);

}  // namespace spirit::daemon
