// Stream naming rules, table-driven: what is accepted, and that each refusal
// says why.
#include <catch2/catch.hpp>

#include "core/stream_name.h"

using namespace spirit;
using Catch::Matchers::Contains;

TEST_CASE("valid stream names", "[core][unit]") {
    auto name = GENERATE(as<std::string>{}, "orders", "user-123", "a", "_x", "eu.orders:v2",
                         "tenant/7/orders", "k=v+1@site", std::string(200, 'n'));
    INFO(name);
    CHECK(core::validate_stream_name(name));
}

TEST_CASE("invalid stream names say what is wrong", "[core][unit]") {
    using Row = std::tuple<std::string, std::string>;
    auto [name, why] = GENERATE(table<std::string, std::string>({
        Row{"", "empty"},
        Row{std::string(201, 'n'), "longer than 200"},
        Row{"-orders", "must start with"},
        Row{".hidden", "must start with"},
        Row{"has space", "' ' is not|byte 0x20"},
        Row{"star*", "'*' at offset 4"},
        Row{"gt>", "'>' at offset 2"},
        Row{"$topology", "reserved"},
        Row{std::string("nul\0x", 5), "byte 0x00"},
    }));
    INFO(name);
    auto r = core::validate_stream_name(name);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(core::errc::invalid_stream_name));
    bool matched = false;
    std::size_t start = 0;
    while (start <= why.size()) {
        std::size_t bar = why.find('|', start);
        std::string alternative = why.substr(start, bar - start);
        if (r.error().detail.find(alternative) != std::string::npos) matched = true;
        if (bar == std::string::npos) break;
        start = bar + 1;
    }
    INFO(r.error().detail);
    CHECK(matched);
}

TEST_CASE("system stream names are allowed only in the system scope", "[core][unit]") {
    CHECK(core::validate_stream_name("$topology", core::NameScope::system));
    CHECK_FALSE(core::validate_stream_name("$", core::NameScope::system));
    CHECK_FALSE(core::validate_stream_name("$topology"));
}

TEST_CASE("UTF-8 validation", "[core][unit]") {
    CHECK(core::is_valid_utf8("plain"));
    CHECK(core::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    CHECK_FALSE(core::is_valid_utf8("\xc0\xaf"));          // overlong
    CHECK_FALSE(core::is_valid_utf8("\xed\xa0\x80"));      // surrogate
    CHECK_FALSE(core::is_valid_utf8("\xe2\x82"));          // truncated
    CHECK_FALSE(core::is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}
