// `spirit status` and the progress output through a real spiritd: --watch
// prints one block per refresh (apart off a terminal, in place on one),
// --json one object per refresh; on a terminal (a pty from script(1))
// verify and backup draw a bar redrawn with carriage returns, off it they
// print plain lines.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "tests/integration/daemon_harness.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

std::string cli(const test::Daemon& d, const std::string& args) {
    return fmt::format("{} --socket {} {}", SPIRIT_CLI, (d.dir() / "spirit.sock").string(), args);
}

// Runs `command` with a pseudo-terminal as its stdin, stdout and stderr.
test::CommandResult on_terminal(const std::string& command) {
    return test::run_command({"/usr/bin/script", "-qec", command, "/dev/null"}, "",
                             std::chrono::seconds(60));
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("status --watch refreshes: blocks off a terminal, in place on one", "[ops][status]") {
    test::Daemon d;
    d.start();
    auto plain = test::run_command({"/bin/sh", "-c",
                                    cli(d,
                                        "status --watch --count 3 "
                                        "--interval-ms 100")});
    REQUIRE(plain.exit_code == 0);
    CHECK(count(plain.out, "node            node-1\n") == 3);
    CHECK(count(plain.out, "\n\nnode ") == 2);
    CHECK(plain.out.find('\x1b') == std::string::npos);

    auto json = test::run_command(
        {"/bin/sh", "-c", cli(d, "status --json --watch --count 2 --interval-ms 100")});
    REQUIRE(json.exit_code == 0);
    CHECK(count(json.out, "\n") == 2);
    CHECK(count(json.out, "{\"node\":\"node-1\"") == 2);
    auto parsed = test::run_command(
        {"/usr/bin/python3", "-c",
         "import json,sys; [json.loads(l) for l in sys.stdin.read().splitlines()]"},
        json.out);
    CHECK(parsed.exit_code == 0);

    auto terminal = on_terminal(cli(d, "status --watch --count 2 --interval-ms 100"));
    CHECK(count(terminal.out, "\x1b[H\x1b[2J") == 2);

    auto bad = test::run_command({"/bin/sh", "-c", cli(d, "status --watch --interval-ms 5")});
    CHECK(bad.exit_code == 2);
}

TEST_CASE("verify and backup draw a progress bar on a terminal and print lines off it",
          "[ops][status]") {
    test::Daemon d;
    d.start();
    auto c = d.client();
    const std::string payload(100, 'x');
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    for (int i = 0; i < 20; ++i) REQUIRE(c->publish("s" + std::to_string(i % 3), std::span(&e, 1)));

    auto bar = on_terminal(cli(d, "verify"));
    INFO(bar.out);
    CHECK_THAT(bar.out, Contains("\rverify  [########################] 100%  20 events"));
    CHECK_THAT(bar.out, Contains("s0: ok, 7 events (seq 1..7)"));
    auto lines = test::run_command({"/bin/sh", "-c", cli(d, "verify")});
    CHECK(lines.exit_code == 0);
    CHECK_THAT(lines.err, Contains("verify: 20 events of about 20 events (100%)"));
    CHECK(lines.err.find('\r') == std::string::npos);

    const std::string out = (d.dir() / "b").string();
    auto backup = on_terminal(cli(d, "backup --out " + out));
    INFO(backup.out);
    CHECK_THAT(backup.out, Contains("\rbackup  ["));
    CHECK_THAT(backup.out, Contains("backup written to " + out));
}
