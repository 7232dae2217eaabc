#include "daemon/cluster/node_record.h"

#include <fmt/format.h>

namespace spirit::daemon {

namespace {
constexpr std::byte role_version{1};
constexpr std::size_t role_header_bytes = 1 + 8;
constexpr std::size_t node_id_bytes_max = 64;
}  // namespace

core::Bytes encode_role(const topology::Role& role) {
    const auto master = core::as_bytes(role.master.value());
    core::Bytes out(role_header_bytes + master.size());
    out[0] = role_version;
    core::store_be64(out.data() + 1, role.epoch.value());
    std::copy(master.begin(), master.end(), out.begin() + role_header_bytes);
    return out;
}

core::Result<topology::Role> decode_role(core::ByteView bytes) {
    if (bytes.size() < role_header_bytes || bytes[0] != role_version ||
        bytes.size() - role_header_bytes > node_id_bytes_max) {
        return core::make_error(core::errc::corrupt,
                                fmt::format("node record \"{}\": {} bytes are not a v1 role",
                                            node_key_role, bytes.size()));
    }
    topology::Role role;
    role.epoch = core::Epoch{core::load_be64(bytes.data() + 1)};
    role.master = core::NodeId(
        std::string_view(reinterpret_cast<const char*>(bytes.data() + role_header_bytes),
                         bytes.size() - role_header_bytes));
    return role;
}

}  // namespace spirit::daemon
