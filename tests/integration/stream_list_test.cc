// The stream list comes in pages of at most 1,000, each after the last name
// of the page before; the client library follows them, so `spirit streams`
// lists every stream however many there are.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

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
    // A header, then exactly one line per stream, in order: no page lost,
    // none repeated.
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < cli.out.size();) {
        const std::size_t nl = cli.out.find('\n', at);
        REQUIRE(nl != std::string::npos);
        lines.push_back(cli.out.substr(at, nl - at));
        at = nl + 1;
    }
    REQUIRE(lines.size() == count + 1);
    CHECK(lines[0].rfind("STREAM", 0) == 0);
    for (int i = 0; i < count; ++i) {
        const std::string& line = lines[static_cast<std::size_t>(i) + 1];
        const std::string name = fmt::format("s.{:05}", i);
        INFO(line);
        CHECK(line.substr(0, line.find(' ')) == name);
    }
}
