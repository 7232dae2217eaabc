// tests/support/bytes.h: small byte helpers for tests.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/ids.h"

namespace spirit::test {

// Hex to bytes; spaces are ignored ("9502 01 a16f").
inline core::Bytes hex(std::string_view h) {
    std::string compact;
    for (char c : h) {
        if (c != ' ') compact.push_back(c);
    }
    auto b = core::from_hex(compact);
    if (!b) throw std::invalid_argument("bad hex in test: " + std::string(h));
    return *b;
}

inline core::EventId event_id(std::uint64_t n) {
    core::EventId id;
    core::store_be64(id.bytes.data() + 8, n);
    id.bytes[0] = std::byte{0x5a};
    return id;
}

inline core::ByteView view(const std::string& s) {
    return core::as_bytes(s);
}

}  // namespace spirit::test
