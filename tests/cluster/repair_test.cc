// Divergence is repaired, never silently dropped. A slave whose copy holds
// events the master never had (made from outside: its data dir is run alone
// for a while) finds the last seq it shares with the master by a search,
// moves its own suffix into quarantine and catches up without a wipe;
// `spirit quarantine ls` shows exactly the removed events and `republish`
// brings one back once. Nothing acknowledged is ever quarantined, and no
// acknowledgement names a diverged copy as a holder before that copy was
// cut and verified.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "tests/cluster/cluster_harness.h"
#include "tests/support/bytes.h"

using namespace spirit;
namespace proto = core::protocol;
using Catch::Matchers::Contains;
using std::chrono::seconds;

namespace {

// Streams named all.* are immediate with acks = "all": every copy counts.
constexpr const char* all_streams_toml = R"(
[[streams]]
pattern = "all.>"
redundancy = "immediate"
acks = "all"
)";

// Stops node-c (`node`) and gives its copy of `stream` `count` events of
// its own (ids from `first_id`), by running its data dir alone.
void diverge(test::Daemon& node, const std::string& stream, std::uint64_t first_id,
             std::uint64_t count) {
    node.stop();
    test::Daemon alone({.node_id = "node-c"});
    test::copy_dir(node.data_dir(), alone.data_dir());
    alone.start();
    {
        auto client = alone.client();
        auto own = test::publish_with_ids(*client, stream, first_id, count, 10);
        for (const auto& o : own) {
            REQUIRE(o.result);
            REQUIRE(*o.result);
        }
    }
    alone.stop();
    test::copy_dir(alone.data_dir(), node.data_dir());
}

// Polls `node`'s quarantine of `stream` without pause until it holds
// something; returns when the last poll that found it empty began.
std::chrono::steady_clock::time_point last_poll_before_cut(const test::Daemon& node,
                                                           const std::string& stream) {
    auto client = node.client();
    std::optional<std::chrono::steady_clock::time_point> last_empty;
    bool cut = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!cut && std::chrono::steady_clock::now() < deadline) {
        const auto began = std::chrono::steady_clock::now();
        auto list = client->quarantine_list(stream);
        REQUIRE(list);
        cut = !list->streams.empty();
        if (!cut) last_empty = began;
    }
    INFO(node.log());
    REQUIRE(cut);
    REQUIRE(last_empty);
    return *last_empty;
}

// Publishes one event (id `first_id`, then the next on each timeout) until
// it is acknowledged; returns the receipt.
net::PublishReceipt publish_acked(net::Client& client, const std::string& stream,
                                  std::uint64_t first_id) {
    for (std::uint64_t id = first_id; id < first_id + 100; ++id) {
        const std::string payload = fmt::format("{}-{}", stream, id);
        core::EventDraft e{test::event_id(id), "t", {}, core::as_bytes(payload)};
        auto r = client.publish(stream, std::span(&e, 1));
        if (r) return *r;
        INFO(r.error().message());
        REQUIRE(r.error().is(core::errc::timeout));
    }
    FAIL("no publish to " << stream << " was acknowledged");
    return {};
}

// Makes the envelopes that carry `payloads` undecodable in a data dir's
// LMDB file, in place: each payload's msgpack length grows by one, so the
// payload swallows the hash's header. Works on the file of a running daemon
// too (LMDB reads through a shared map of it). Returns the places changed.
std::size_t corrupt_payloads(const std::filesystem::path& data_dir,
                             const std::vector<std::string>& payloads) {
    const std::filesystem::path path = data_dir / "data.mdb";
    std::string file;
    {
        std::ifstream in(path, std::ios::binary);
        REQUIRE(in);
        file.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::size_t changed = 0;
    for (const std::string& p : payloads) {
        REQUIRE(p.size() < 0x7f);
        std::string pattern{'\xc4', static_cast<char>(p.size())};
        pattern += p;
        for (auto at = file.find(pattern); at != std::string::npos;
             at = file.find(pattern, at + 1)) {
            const char longer = static_cast<char>(p.size() + 1);
            REQUIRE(::pwrite(fd, &longer, 1, static_cast<off_t>(at + 1)) == 1);
            ++changed;
        }
    }
    ::close(fd);
    return changed;
}

// The payloads publish_with_ids gives ids first..first+count-1 of `stream`.
std::vector<std::string> payloads(const std::string& stream, std::uint64_t first,
                                  std::uint64_t count) {
    std::vector<std::string> out;
    for (std::uint64_t i = first; i < first + count; ++i)
        out.push_back(fmt::format("{}-{}", stream, i));
    return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("a slave with a divergent suffix moves it to quarantine and catches up", "[cluster]") {
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    test::Daemon& c = cluster.node("node-c");
    test::wait_serving(a);
    std::vector<test::Outcome> acked;
    {
        auto client = a.client();
        acked = test::publish_with_ids(*client, "log", 0, 100);
    }
    const auto before = test::read_all(a, "log");
    test::wait_for_copy(c, "log", before.back().seq, before.back().hash, seconds(30));

    // node-c's copy gains ten events of its own: run alone on its data dir.
    diverge(c, "log", 5000, 10);
    // Meanwhile the master goes on: its seqs 101.. are other events.
    {
        auto client = a.client();
        auto more = test::publish_with_ids(*client, "log", 100, 20);
        acked.insert(acked.end(), more.begin(), more.end());
    }
    c.start();
    const auto master = test::read_all(a, "log");
    REQUIRE(master.size() == 120);
    test::wait_for_copy(c, "log", master.back().seq, master.back().hash, seconds(60));
    test::check_acked_present(acked, test::read_all(c, "log"));
    CHECK_THAT(c.log(), Contains("moved to quarantine"));

    // Exactly the removed events are in quarantine, on node-c only.
    auto client = c.client();
    auto list = client->quarantine_list("");
    REQUIRE(list);
    REQUIRE(list->streams.size() == 1);
    const auto& q = list->streams[0];
    CHECK(q.stream == "log");
    CHECK(q.events == 10);
    CHECK(q.first_seq == core::Seq{101});
    CHECK(q.last_seq == core::Seq{110});
    auto entries = client->quarantine_read("log", core::Seq{0}, 100);
    REQUIRE(entries);
    REQUIRE(entries->entries.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) {
        const auto& e = entries->entries[i];
        CHECK(e.seq == core::Seq{101 + i});
        CHECK(e.id == test::event_id(5000 + i));
        CHECK(core::as_chars(e.payload) == fmt::format("log-{}", 5000 + i));
    }
    for (const char* other : {"node-a", "node-b"}) {
        auto oc = cluster.node(other).client();
        auto ol = oc->quarantine_list("");
        REQUIRE(ol);
        CHECK(ol->streams.empty());
    }

    // The CLI shows them; republish brings one back as a new event, once.
    const std::string socket = (c.dir() / "spirit.sock").string();
    auto ls = test::run_command({SPIRIT_CLI, "--socket", socket, "quarantine", "ls"});
    INFO(ls.out << ls.err);
    CHECK(ls.exit_code == 0);
    CHECK_THAT(ls.out, Contains("log"));
    CHECK_THAT(ls.out, Contains("101"));
    CHECK_THAT(ls.out, Contains("110"));
    auto show = test::run_command({SPIRIT_CLI, "--socket", socket, "quarantine", "show", "log"});
    CHECK(show.exit_code == 0);
    CHECK_THAT(show.out, Contains("log-5004"));
    for (int round = 0; round < 2; ++round) {
        auto re = test::run_command(
            {SPIRIT_CLI, "--socket", socket, "quarantine", "republish", "log", "105"});
        INFO(re.out << re.err);
        CHECK(re.exit_code == 0);
    }
    const auto after = test::read_all(a, "log");
    REQUIRE(after.size() == 121);  // once, though republished twice
    CHECK(after.back().id == test::event_id(5004));
    CHECK(core::as_chars(after.back().payload) == "log-5004");
    test::wait_for_copy(c, "log", after.back().seq, after.back().hash, seconds(30));
}

TEST_CASE("no acknowledgement names a diverged copy before it was cut and verified", "[cluster]") {
    // acks = all, so every acknowledgement needs node-c's copy. That copy
    // shares seqs 1..100 with the master's and then holds 200 events of its
    // own: it claims seq 300, above everything the master orders meanwhile.
    // Counted as claimed, it would let publishes be acknowledged, naming
    // node-c, the moment its Positions arrive. Verified first, it counts only
    // after the search, the cut into quarantine and the catch-up. A watcher
    // polls node-c's quarantine without pause: a poll that begins after an
    // acknowledgement naming node-c came and still finds the quarantine
    // empty catches an acknowledgement before the cut.
    test::Cluster cluster({.extra_toml = all_streams_toml});
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    test::Daemon& c = cluster.node("node-c");
    test::wait_serving(a);
    std::vector<test::Outcome> before;
    {
        auto client = a.client();
        before = test::publish_with_ids(*client, "all.log", 0, 100);
    }
    for (const auto& o : before) {
        REQUIRE(o.result);
        REQUIRE(*o.result);
        CHECK((*o.result)->holders.size() == 3);
    }
    const auto shared = test::read_all(a, "all.log");
    test::wait_for_copy(c, "all.log", shared.back().seq, shared.back().hash, seconds(30));
    diverge(c, "all.log", 5000, 200);

    std::atomic<bool> stop{false};
    std::vector<test::Outcome> load;
    std::thread loader([&, client = a.client()]() mutable {
        load = test::publish_until(std::move(client), "all.log", 10'000, stop);
    });
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread& t;
        ~Joiner() {
            stop = true;
            if (t.joinable()) t.join();
        }
    } joiner{stop, loader};
    c.start();
    const auto last_empty = last_poll_before_cut(c, "all.log");
    REQUIRE(test::wait_until([&] { return test::status_of(a).replication_errors.empty(); },
                             seconds(60)));
    stop = true;
    loader.join();
    std::size_t acked = 0;
    for (const auto& o : load) {
        REQUIRE(o.result);  // none hangs
        if (!*o.result) {
            INFO(o.result->error().message());
            CHECK(o.result->error().is(core::errc::timeout));
            continue;
        }
        ++acked;
        const auto& holders = (*o.result)->holders;
        CHECK(holders == std::vector<std::string>{"node-a", "node-b", "node-c"});
        INFO("acknowledged " << std::chrono::duration_cast<std::chrono::microseconds>(last_empty -
                                                                                      o.answered)
                                    .count()
                             << " us before a poll that found no cut yet");
        CHECK(o.answered > last_empty);
    }
    WARN(acked << " of " << load.size() << " publishes during the repair were acknowledged");
    // Once repaired, acknowledgements name node-c (a publish may still time
    // out while it catches up).
    auto client = a.client();
    const auto after = publish_acked(*client, "all.log", 900'000);
    CHECK(after.holders == std::vector<std::string>{"node-a", "node-b", "node-c"});
    const auto master = test::read_all(a, "all.log");
    test::wait_for_copy(c, "all.log", master.back().seq, master.back().hash, seconds(60));
    test::check_acked_present(load, test::read_all(c, "all.log"));
    const auto quarantine = test::quarantined(c);
    CHECK(quarantine.size() == 200);
    for (const auto& e : quarantine) {
        CHECK(e.id >= test::event_id(5000));
        CHECK(e.id < test::event_id(5200));
    }
    test::check_acked_not_quarantined(before, quarantine);
    test::check_acked_not_quarantined(load, quarantine);
}

TEST_CASE("a copy that cannot be read during the divergence search is never cut by a guess",
          "[cluster]") {
    // node-c's copy of `log` diverged after seq 100 (as above). Then the
    // first 100 events of one copy are made undecodable (bytes flipped in
    // its LMDB file), so the hashes the search compares cannot be read
    // there. Answering "no such seq" would end the search at seq 0 and cut
    // the whole copy into quarantine. Instead the side that cannot read logs
    // the error (stream and seq) and closes the link; the link is made again
    // and the same happens: nothing is cut, the copy stays as it was.
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    test::Daemon& c = cluster.node("node-c");
    test::wait_serving(a);
    {
        auto client = a.client();
        (void)test::publish_with_ids(*client, "log", 0, 100);
    }
    const auto before = test::read_all(a, "log");
    test::wait_for_copy(c, "log", before.back().seq, before.back().hash, seconds(30));
    diverge(c, "log", 5000, 10);
    {
        auto client = a.client();
        (void)test::publish_with_ids(*client, "log", 100, 20);
    }
    std::string reader_error;
    std::string closing;
    test::Daemon* reader = nullptr;
    SECTION("the slave cannot read its copy") {
        REQUIRE(corrupt_payloads(c.data_dir(), payloads("log", 0, 100)) >= 100);
        reader = &c;
        reader_error = "stream log: reading this copy for the master's probe of seqs";
        closing = "closing the link to the master node-a so that both sides start over";
    }
    SECTION("the master cannot read its copy") {
        REQUIRE(corrupt_payloads(a.data_dir(), payloads("log", 0, 100)) >= 100);
        reader = &a;
        reader_error =
            "stream log: reading this master's copy (hashes to compare with node-c's seqs";
        closing = "closing the link to node-c so that both sides start over";
    }
    c.start();
    // Twice: the link was made again and the search started over. (Or the
    // search ended at seq 0, the guess this must never make.)
    const std::string guessed = "agrees with this master's up to seq 0";
    CHECK(test::wait_until(
        [&] {
            return count_of(reader->log(), reader_error) >= 2 ||
                   a.log().find(guessed) != std::string::npos;
        },
        seconds(60)));
    const std::string log = reader->log();
    INFO(log);
    CHECK_THAT(a.log(), !Contains(guessed));
    CHECK(count_of(log, reader_error) >= 2);
    CHECK_THAT(log, Contains(closing));
    CHECK_THAT(log, Contains("stream log seq "));  // the error names the seq
    auto client = c.client();
    auto q = client->quarantine_list("");
    REQUIRE(q);
    CHECK(q->streams.empty());
    CHECK(client->stream_info("log")->last_seq == core::Seq{110});
    CHECK(a.running());
    CHECK(c.running());
}
