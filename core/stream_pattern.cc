#include "core/stream_pattern.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/limits.h"
#include "core/stream_name.h"

namespace spirit::core {
namespace {

// Splits on '.', keeping empty tokens ("a..b" is three tokens).
std::vector<std::string_view> split_tokens(std::string_view text) {
    std::vector<std::string_view> tokens;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = text.find('.', start);
        if (dot == std::string_view::npos) {
            tokens.push_back(text.substr(start));
            return tokens;
        }
        tokens.push_back(text.substr(start, dot - start));
        start = dot + 1;
    }
}

// A byte for a message: 'x' when printable ASCII, else its hex value.
std::string printable(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02x}", u);
}

bool is_token_char(char c) {
    return c != '.' && is_stream_name_char(c);
}

}  // namespace

Result<void> validate_pattern(std::string_view pattern) {
    auto bad = [&](std::string_view why) {
        return make_error(errc::invalid_argument, fmt::format("pattern {:?}: {}", pattern, why));
    };
    if (pattern.empty()) return bad("empty");
    // A name matching the pattern is at least as long as the pattern.
    if (pattern.size() > limits::stream_name_bytes_max) {
        return bad(fmt::format("longer than {} bytes, so no stream name can match",
                               limits::stream_name_bytes_max));
    }
    const std::vector<std::string_view> tokens = split_tokens(pattern);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::string_view token = tokens[i];
        if (token == "*") continue;
        if (token == ">") {
            if (i + 1 == tokens.size()) continue;
            return bad(fmt::format("'>' is token {} of {}; it may only be the last token", i + 1,
                                   tokens.size()));
        }
        if (token.empty()) return bad(fmt::format("token {} is empty", i + 1));
        auto c = std::find_if_not(token.begin(), token.end(), is_token_char);
        if (c != token.end()) {
            return bad(
                fmt::format("token {:?} has {}; a token is '*', '>' or letters, digits "
                            "and _ : @ / = + -",
                            token, printable(*c)));
        }
        if (i == 0 && !is_stream_name_start(token.front())) {
            return bad(
                fmt::format("starts with {}; a stream name starts with a letter, digit "
                            "or '_'",
                            printable(token.front())));
        }
    }
    return {};
}

bool pattern_matches(std::string_view pattern, std::string_view name) {
    const std::vector<std::string_view> want = split_tokens(pattern);
    const std::vector<std::string_view> have = split_tokens(name);
    for (std::size_t i = 0; i < want.size(); ++i) {
        if (want[i] == ">" && i + 1 == want.size()) {
            // One or more remaining tokens, none of them empty.
            return have.size() > i &&
                   std::none_of(have.begin() + static_cast<std::ptrdiff_t>(i), have.end(),
                                [](std::string_view t) { return t.empty(); });
        }
        if (i >= have.size()) return false;
        if (want[i] == "*") {
            if (have[i].empty()) return false;
        } else if (want[i] != have[i]) {
            return false;
        }
    }
    return want.size() == have.size();
}

bool pattern_covers(std::string_view outer, std::string_view inner) {
    const std::vector<std::string_view> wide = split_tokens(outer);
    const std::vector<std::string_view> narrow = split_tokens(inner);
    for (std::size_t i = 0; i < wide.size(); ++i) {
        if (wide[i] == ">" && i + 1 == wide.size()) return narrow.size() > i;
        if (i >= narrow.size() || narrow[i] == ">") return false;
        if (wide[i] != "*" && wide[i] != narrow[i]) return false;
    }
    return wide.size() == narrow.size();
}

}  // namespace spirit::core
