// The stream-pattern language (core/stream_pattern.h), table-driven: which
// names a pattern matches, when one pattern covers another (grants), and
// which patterns are refused, each refusal with invalid_argument saying why.
// Config's wrapping of a refusal into config_invalid with FILE:LINE: KEY is
// tested in tests/daemon/config_test.cc.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "core/stream_name.h"
#include "core/stream_pattern.h"

using namespace spirit;
using Catch::Matchers::Contains;

TEST_CASE("pattern_matches follows the * and > wildcard rules", "[core][unit]") {
    auto [pattern, name, matches] = GENERATE(table<std::string, std::string, bool>({
        {"orders.*", "orders.eu", true},
        {"orders.*", "orders.eu.x", false},
        {"orders.*", "orders", false},
        {"orders.*", "orders.", false},
        {"orders.*", "billing.eu", false},
        {"orders.>", "orders.eu.x", true},
        {"orders.>", "orders.eu", true},
        {"orders.>", "orders", false},
        {"orders.>", "orders.", false},
        {"orders.>", "billing.eu", false},
        {"*", "orders", true},
        {"*", "orders.eu", false},
        {">", "orders", true},
        {">", "orders.eu.x", true},
        {"orders", "orders", true},
        {"orders", "orders.eu", false},
        {"orders", "order", false},
        {"orders", "ordersx", false},
        {"orders", "Orders", false},
        {"*.eu", "orders.eu", true},
        {"*.eu", "orders.us", false},
        {"a.*.c", "a.b.c", true},
        {"a.*.c", "a.b.d", false},
        {"a.*.c", "a.b.c.d", false},
        {"a.*.>", "a.b.c.d", true},
        {"a.*.>", "a.b", false},
    }));
    INFO(pattern << " vs " << name);
    CHECK(core::pattern_matches(pattern, name) == matches);
}

TEST_CASE("pattern_covers holds when every name the inner one matches, the outer matches",
          "[core][unit]") {
    auto [outer, inner, covers] = GENERATE(table<std::string, std::string, bool>({
        {"orders.>", "orders.eu", true},
        {"orders.>", "orders.*", true},
        {"orders.>", "orders.*.north", true},
        {"orders.>", "orders.>", true},
        {"orders.>", "orders", false},
        {"orders.>", ">", false},
        {"orders.*", "orders.eu", true},
        {"orders.*", "orders.*", true},
        {"orders.*", "orders.>", false},
        {"orders.*", "orders.eu.x", false},
        {"orders.eu", "orders.*", false},
        {"orders.eu", "orders.eu", true},
        {">", ">", true},
        {">", "a.*.>", true},
        {"*.eu", "orders.eu", true},
        {"*.eu", "*.eu", true},
        {"*.eu", "*.*", false},
    }));
    INFO(outer << " covers " << inner);
    CHECK(core::pattern_covers(outer, inner) == covers);
}

TEST_CASE("validate_pattern accepts name tokens and wildcards", "[core][unit]") {
    auto good = GENERATE(as<std::string>{}, "orders", "orders.*", "orders.>", "*", ">", "*.*.>",
                         "tenant/7:x@y=z+1-_.*", "_", std::string(200, 'p'));
    INFO(good);
    auto valid = core::validate_pattern(good);
    if (!valid) FAIL(valid.error().detail);
}

TEST_CASE("validate_pattern refuses malformed patterns saying why", "[core][unit]") {
    auto [bad, why] = GENERATE(table<std::string, std::string>({
        {"", "empty"},
        {"a..b", "token 2 is empty"},
        {".a", "token 1 is empty"},
        {"a.", "token 2 is empty"},
        {"a.>.b", "'>' is token 2 of 3"},
        {">.a", "'>' is token 1 of 2"},
        {"a*", "token \"a*\" has '*'"},
        {"a>", "token \"a>\" has '>'"},
        {"a b", "has byte 0x20"},
        {"a.*x", "token \"*x\" has '*'"},
        {"a.$b", "has '$'"},
        {std::string(201, 'p'), "longer than 200 bytes"},
        {"-orders.*", "starts with '-'"},
        {"$topology", "has '$'"},
        {"a.b\tc", "has byte 0x09"},
    }));
    INFO(bad);
    auto refused = core::validate_pattern(bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(core::errc::invalid_argument));
    CHECK_THAT(refused.error().detail, Contains(why));
}

TEST_CASE("every valid stream name is a valid pattern matching only itself", "[core][unit]") {
    auto name = GENERATE(as<std::string>{}, "orders", "user-123", "_x", "eu.orders:v2",
                         "tenant/7/orders", "k=v+1@site", "a.-b.+c", std::string(200, 'n'));
    INFO(name);
    REQUIRE(core::validate_stream_name(name));
    auto valid = core::validate_pattern(name);
    if (!valid) FAIL(valid.error().detail);
    CHECK(core::pattern_matches(name, name));
    CHECK_FALSE(core::pattern_matches(name, name + "x"));
    CHECK(core::pattern_covers(name, name));
}
