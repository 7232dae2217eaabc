// The stream list comes in pages of at most 1,000, each after the last name
// of the page before; the client library follows them, so `spirit streams`
// lists every stream however many there are.
#include <catch2/catch.hpp>

#include <algorithm>

#include <fmt/format.h>

#include "tests/integration/daemon_harness.h"

using namespace spirit;

TEST_CASE("a long stream list arrives in pages and the client follows them", "[integration]") {
    test::Daemon d;
    d.start();
    auto c = d.client();
    constexpr int count = 2'345;
    for (int i = 0; i < count; ++i) {
        REQUIRE(c->create_stream(fmt::format("s.{:05}", i), {}));
    }
    auto all = c->streams();
    REQUIRE(all);
    REQUIRE(all->size() == count);
    for (int i = 0; i < count; ++i)
        CHECK((*all)[static_cast<std::size_t>(i)].name == fmt::format("s.{:05}", i));

    auto cli =
        test::run_command({SPIRIT_CLI, "--socket", (d.dir() / "spirit.sock").string(), "streams"});
    INFO(cli.err);
    REQUIRE(cli.exit_code == 0);
    CHECK(std::count(cli.out.begin(), cli.out.end(), '\n') >= count);
    CHECK(cli.out.find("s.02344") != std::string::npos);
}
