#include "core/bytes.h"

#include <sodium.h>

namespace spirit::core {

bool constant_time_equal(ByteView a, ByteView b) {
    return a.size() == b.size() && (a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0);
}

std::string to_hex(ByteView v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(v.size() * 2);
    for (std::byte b : v) {
        auto x = static_cast<unsigned>(b);
        out.push_back(digits[x >> 4]);
        out.push_back(digits[x & 0xfu]);
    }
    return out;
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<Bytes> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    Bytes out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = hex_value(hex[i]);
        int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<std::byte>((hi << 4) | lo));
    }
    return out;
}

}  // namespace spirit::core
