// Hot backup and restore through real spiritd processes and the spirit
// CLI. The method: a store of some megabytes, a steady publish load on a
// thread of its own that records when each publish was acknowledged, and
// `spirit backup` taken while the load runs; the backup is restored into a
// new node with `spiritd --restore`, which then serves: `spirit verify`
// passes, every event acknowledged before the backup started is there at
// the seq its receipt named, and the restored copy is a prefix of the
// original. Then the edges: a slow reader stalls the copy and not the
// publishes, a client that hangs up frees the daemon for the next backup,
// rights, bad --out paths, a full disk, and bad --restore arguments.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/cluster/cluster_harness.h"
#include "tests/integration/daemon_harness.h"
#include "tests/ops/ops_harness.h"
#include "tests/support/bytes.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

// `batches` publishes of 100 events of 1 KiB each to `stream`.
void fill(const test::Daemon& d, const std::string& stream, int batches) {
    auto c = d.client();
    const std::string payload(1024, 'p');
    std::vector<core::EventDraft> events(
        100, core::EventDraft{std::nullopt, "bulk", {}, core::as_bytes(payload)});
    for (int i = 0; i < batches; ++i) {
        c->publish_async(stream, events, {},
                         [](core::Result<net::PublishReceipt> r) { REQUIRE(r); });
        if (i % 16 == 15) REQUIRE(c->flush(std::chrono::seconds(60)));
    }
    REQUIRE(c->flush(std::chrono::seconds(60)));
}

test::CommandResult spirit_cli(const test::Daemon& d, std::vector<std::string> args,
                               const std::string& token = "") {
    std::vector<std::string> argv{SPIRIT_CLI, "--socket", (d.dir() / "spirit.sock").string()};
    if (!token.empty()) {
        argv.push_back("--token");
        argv.push_back(token);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv, "", std::chrono::seconds(120));
}

test::CommandResult restore(const test::Daemon& d, const std::filesystem::path& file) {
    return test::run_command(
        {SPIRIT_SPIRITD, "--config", d.config_path().string(), "--restore", file.string()}, "",
        std::chrono::seconds(120));
}

}  // namespace

TEST_CASE(
    "a backup under load restores to a node that verifies and holds every event acked "
    "before it started",
    "[ops][backup]") {
    test::Daemon a;
    a.start();
    fill(a, "bulk", 200);  // about 20 MiB
    test::Load load(a.endpoint(), "load", 1'000'000);
    REQUIRE(test::wait_until([&] { return load.acked() >= 50; }));
    const auto started = std::chrono::steady_clock::now();
    const std::filesystem::path file = a.dir() / "node.backup";
    auto backup = spirit_cli(a, {"backup", "--out", file.string()});
    const auto ended = std::chrono::steady_clock::now();
    INFO(backup.out << backup.err);
    REQUIRE(backup.exit_code == 0);
    CHECK_THAT(backup.out, Contains("backup written to " + file.string()));
    CHECK_THAT(backup.err, Contains("backup: "));  // plain progress lines: stderr is a pipe
    REQUIRE(test::wait_until([&] { return load.acked() >= 200; }));
    const auto& batches = load.stop();

    std::size_t acked_before = 0;
    std::size_t acked_during = 0;
    for (const auto& b : batches) {
        REQUIRE(b.result);
        REQUIRE(*b.result);
        if (b.acked_at < started) ++acked_before;
        if (b.acked_at >= started && b.acked_at <= ended) ++acked_during;
    }
    INFO(acked_before << " batches acknowledged before the backup, " << acked_during
                      << " during it");
    CHECK(acked_during > 0);  // writes went on while the copy was taken

    test::Daemon b(test::DaemonOptions{.node_id = "node-restored"});
    auto restored = restore(b, file);
    INFO(restored.out << restored.err);
    REQUIRE(restored.exit_code == 0);
    CHECK_THAT(restored.err, Contains("every chain verified"));
    b.start();
    auto verify = spirit_cli(b, {"verify"});
    INFO(verify.out << verify.err);
    REQUIRE(verify.exit_code == 0);
    CHECK_THAT(verify.out, Contains("bulk: ok, 20000 events (seq 1..20000)"));

    const auto copy = test::read_all(b, "load");
    std::map<core::EventId, core::Seq> at;
    for (const core::Envelope& e : copy) at.emplace(e.id, e.seq);
    for (const auto& batch : batches) {
        if (batch.acked_at >= started) continue;
        const net::PublishReceipt& r = **batch.result;
        for (std::size_t k = 0; k < batch.ids.size(); ++k) {
            auto it = at.find(batch.ids[k]);
            REQUIRE(it != at.end());
            CHECK(it->second.value() == r.first_seq.value() + k);
        }
    }
    // The restored copy is a prefix of the original.
    const auto original = test::read_all(a, "load");
    REQUIRE(copy.size() <= original.size());
    REQUIRE_FALSE(copy.empty());
    CHECK(original[copy.size() - 1].hash == copy.back().hash);
}

TEST_CASE("a slow backup reader stalls the copy, not the publishes, and one backup runs at a time",
          "[ops][backup]") {
    test::Daemon a;
    a.start();
    fill(a, "bulk", 60);  // about 6 MiB: 24 pieces
    test::Load load(a.endpoint(), "load", 1);
    auto slow = a.client();
    auto other = a.client();
    std::uint64_t received = 0;
    std::uint64_t acked_at_start = 0;
    bool second_refused = false;
    auto done = slow->backup([&](const core::protocol::BackupChunk& chunk) -> core::Result<void> {
        if (received == 0) {
            acked_at_start = load.acked();
            auto second = other->backup([](const auto&) -> core::Result<void> { return {}; });
            second_refused = !second && second.error().is(core::errc::busy);
        }
        received += chunk.data.size();
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        return {};
    });
    REQUIRE(done);
    CHECK(done->bytes == received);
    CHECK(second_refused);
    const std::uint64_t acked_during = load.acked() - acked_at_start;
    load.stop();
    INFO(acked_during << " publishes acknowledged while the copy was read slowly");
    CHECK(acked_during > 100);
}

TEST_CASE("a client that hangs up mid-backup stops the copy and frees the daemon for the next",
          "[ops][backup]") {
    test::Daemon a;
    a.start();
    fill(a, "bulk", 40);
    {
        auto quitter = a.client();
        auto r = quitter->backup([](const auto&) -> core::Result<void> {
            return core::make_error(core::errc::internal, "the test hangs up");
        });
        REQUIRE_FALSE(r);
    }
    core::Result<core::protocol::BackupDone> next = core::make_error(core::errc::busy, "");
    REQUIRE(test::wait_until([&] {
        auto c = a.client();
        next = c->backup([](const auto&) -> core::Result<void> { return {}; });
        return next.has_value() || !next.error().is(core::errc::busy);
    }));
    REQUIRE(next);
    CHECK(next->bytes > 4'000'000);
    CHECK_THAT(a.log(), Contains("backup: stopped after"));
}

TEST_CASE("a backup needs the admin right", "[ops][backup]") {
    const std::string admin = "admin-token-0123456789";
    const std::string reader = "reader-token-0123456789";
    test::Daemon a(test::DaemonOptions{
        .extra_toml = fmt::format("[[client.grants]]\ntoken = \"{}\"\nadmin = true\n"
                                  "[[client.grants]]\ntoken = \"{}\"\nsubscribe = [\">\"]\n",
                                  admin, reader),
        .token = admin});
    a.start();
    auto refused = spirit_cli(a, {"backup", "--out", (a.dir() / "b1").string()}, reader);
    CHECK(refused.exit_code == 1);
    CHECK_THAT(refused.err,
               Contains("may not take backups (its grant has admin = false) (unauthorized)"));
    CHECK_FALSE(std::filesystem::exists(a.dir() / "b1"));
    CHECK_FALSE(std::filesystem::exists(a.dir() / "b1.partial"));
    auto taken = spirit_cli(a, {"backup", "--out", (a.dir() / "b2").string()}, admin);
    INFO(taken.err);
    CHECK(taken.exit_code == 0);
}

TEST_CASE("a bad --out is refused naming it, and a full disk fails the backup and keeps nothing",
          "[ops][backup]") {
    test::Daemon a;
    a.start();
    fill(a, "bulk", 10);
    auto missing = spirit_cli(a, {"backup", "--out", "/nonexistent/dir/b"});
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.err, Contains("--out /nonexistent/dir/b: cannot create "
                                     "/nonexistent/dir/b.partial: No such file or directory"));
    std::ofstream(a.dir() / "exists") << "x";
    auto exists = spirit_cli(a, {"backup", "--out", (a.dir() / "exists").string()});
    CHECK(exists.exit_code == 2);
    CHECK_THAT(exists.err, Contains("the file exists; remove it or give --force"));
    auto dir = spirit_cli(a, {"backup", "--out", a.dir().string()});
    CHECK(dir.exit_code == 2);
    CHECK_THAT(dir.err, Contains("is a directory"));
    auto forced = spirit_cli(a, {"backup", "--force", "--out", (a.dir() / "exists").string()});
    CHECK(forced.exit_code == 0);

    // A 256 KiB file system in a mount namespace of the CLI's own.
    const std::filesystem::path tiny = a.dir() / "tiny";
    std::filesystem::create_directories(tiny);
    const std::string cli = fmt::format("{} --socket {} backup --out {}/b", SPIRIT_CLI,
                                        (a.dir() / "spirit.sock").string(), tiny.string());
    auto full = test::run_command(
        {"/usr/bin/unshare", "-m", "/bin/sh", "-c",
         fmt::format("mount -t tmpfs -o size=256k tmpfs {} && {}; echo exit=$?; ls {}",
                     tiny.string(), cli, tiny.string())},
        "", std::chrono::seconds(60));
    INFO(full.out << full.err);
    if (full.err.find("mount:") != std::string::npos) {
        WARN("no tmpfs mount here (" << full.err << "): the full-disk case is not tested");
        return;
    }
    CHECK_THAT(full.out, Contains("exit=1"));
    CHECK_THAT(full.err, Contains("b.partial: No space left on device"));
    CHECK(full.out.find("b.partial") == std::string::npos);  // removed
    // The daemon carries on: another backup works.
    CHECK(spirit_cli(a, {"backup", "--out", (a.dir() / "after").string()}).exit_code == 0);
}

TEST_CASE("spiritd --restore refuses a data dir that holds a store and a file that is no backup",
          "[ops][backup]") {
    test::Daemon a;
    a.start();
    fill(a, "bulk", 2);
    const std::filesystem::path file = a.dir() / "b";
    REQUIRE(spirit_cli(a, {"backup", "--out", file.string()}).exit_code == 0);
    a.stop();
    auto occupied = restore(a, file);
    CHECK(occupied.exit_code == 1);
    CHECK_THAT(occupied.err, Contains("already holds a store"));
    test::Daemon b;
    auto not_backup = restore(b, b.config_path());
    CHECK(not_backup.exit_code == 2);
    CHECK_THAT(not_backup.err, Contains("is not a spirit backup"));
    auto missing = restore(b, b.dir() / "nothing");
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.err, Contains("nothing is not a spirit backup"));
    CHECK_FALSE(std::filesystem::exists(b.data_dir() / "data.mdb"));
}
