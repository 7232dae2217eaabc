// core/bytes.h: byte strings, views, hex and big-endian helpers shared by
// every module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spirit::core {

using Bytes = std::vector<std::byte>;
using ByteView = std::span<const std::byte>;

inline ByteView as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string_view as_chars(ByteView b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline Bytes to_bytes(std::string_view s) {
    ByteView v = as_bytes(s);
    return {v.begin(), v.end()};
}

inline void append(Bytes& out, ByteView v) {
    out.insert(out.end(), v.begin(), v.end());
}

// Lower-case hex of `v`.
std::string to_hex(ByteView v);
// Equal bytes, compared in time that depends only on the sizes (for secrets
// such as client tokens).
bool constant_time_equal(ByteView a, ByteView b);

// Parses hex (either case, even length); nullopt on any other character.
std::optional<Bytes> from_hex(std::string_view hex);

// Big-endian fixed-width integers: byte order equals numeric order, which
// LMDB keys and frame headers rely on.
inline void store_be64(std::byte* out, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<std::byte>(v & 0xffu);
        v >>= 8;
    }
}

inline std::uint64_t load_be64(const std::byte* in) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint64_t>(in[i]);
    return v;
}

inline void store_be32(std::byte* out, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) {
        out[i] = static_cast<std::byte>(v & 0xffu);
        v >>= 8;
    }
}

inline std::uint32_t load_be32(const std::byte* in) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint32_t>(in[i]);
    return v;
}

}  // namespace spirit::core
