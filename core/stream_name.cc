#include "core/stream_name.h"

#include <fmt/format.h>

#include "core/limits.h"

namespace spirit::core {

bool is_stream_name_start(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_stream_name_char(char c) noexcept {
    return is_stream_name_start(c) || c == '.' || c == ':' || c == '@' || c == '/' || c == '=' ||
           c == '+' || c == '-';
}

namespace {

std::string printable(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02x}", u);
}

}  // namespace

Result<void> validate_stream_name(std::string_view name, NameScope scope) {
    std::string_view body = name;
    if (is_system_stream(name)) {
        if (scope != NameScope::system) {
            return make_error(errc::invalid_stream_name,
                              fmt::format("stream name \"{}\": names starting with '$' are "
                                          "reserved for the daemon",
                                          name.substr(0, limits::stream_name_bytes_max)));
        }
        body.remove_prefix(1);
    }
    if (body.empty()) {
        return make_error(errc::invalid_stream_name, "stream name is empty");
    }
    if (name.size() > limits::stream_name_bytes_max) {
        return make_error(errc::invalid_stream_name,
                          fmt::format("stream name of {} bytes is longer than {}", name.size(),
                                      limits::stream_name_bytes_max));
    }
    if (!is_stream_name_start(body.front())) {
        return make_error(errc::invalid_stream_name,
                          fmt::format("stream name \"{}\" must start with a letter, digit or "
                                      "'_', not {}",
                                      name, printable(body.front())));
    }
    for (std::size_t i = 1; i < body.size(); ++i) {
        if (!is_stream_name_char(body[i])) {
            return make_error(
                errc::invalid_stream_name,
                fmt::format("stream name \"{}\" has {} at offset {}; allowed are "
                            "letters, digits and _ . : @ / = + -",
                            name, printable(body[i]), i + (name.size() - body.size())));
        }
    }
    return {};
}

bool is_valid_utf8(std::string_view text) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        std::size_t extra = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1fu, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0fu, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (static_cast<std::size_t>(end - p) <= extra) return false;
        for (std::size_t i = 1; i <= extra; ++i) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        p += extra + 1;
    }
    return true;
}

}  // namespace spirit::core
