// The quarantine through a real spiritd, with the client library and the
// spirit CLI. The data dir is prepared before the daemon starts, with the
// storage API: 20 events with ids in stream "q", then a truncation after
// seq 15 moves 16..20 into the quarantine (as a slave's divergent suffix
// would be). Then: `quarantine ls` and `show` print exactly what is there;
// `republish` publishes a quarantined event again as the stream's next
// event with its original id, type and payload, and a second republish is
// a duplicate; an entry not in the quarantine is not_found; rights are
// checked per stream; `cluster set-master` on a node alone is refused.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <fmt/format.h>

#include "storage/store.h"
#include "tests/integration/daemon_harness.h"
#include "tests/support/bytes.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

const std::string full_token = "full-rights-token-0123456789";
const std::string other_token = "other-streams-token-0123456789";  // no right on q
const std::string reader_token = "q-reader-token-0123456789";      // subscribe q, no publish

std::string payload_of(std::uint64_t i) {
    return "event-" + std::to_string(i);
}

std::string id_hex(std::uint64_t i) {
    return core::to_hex(core::ByteView(test::event_id(i).bytes));
}

// Stream q with events 1..15, and 16..20 in the quarantine.
void prepare(const std::filesystem::path& data_dir) {
    storage::StoreOptions options;
    options.data_dir = data_dir;
    auto store = storage::Store::open(options);
    REQUIRE(store);
    for (std::uint64_t i = 1; i <= 20; ++i) {
        const std::string payload = payload_of(i);
        const core::EventDraft e{test::event_id(i), "test", {}, core::as_bytes(payload)};
        auto r = (*store)->append_sync({.stream = "q", .events = std::span(&e, 1)});
        REQUIRE(r);
        REQUIRE(r->first_seq == core::Seq{i});
    }
    REQUIRE((*store)->truncate_after_sync("q", core::Seq{15}));
}

test::DaemonOptions options() {
    test::DaemonOptions o;
    o.token = full_token;
    o.client_toml = "tokens = [\"" + full_token + "\"]";
    o.extra_toml = "[[client.grants]]\ntoken = \"" + other_token +
                   "\"\npublish = [\"other.>\"]\nsubscribe = [\"other.>\"]\n"
                   "[[client.grants]]\ntoken = \"" +
                   reader_token + "\"\nsubscribe = [\"q\"]\n";
    return o;
}

test::CommandResult spirit_cli(const test::Daemon& d, const std::string& token,
                               std::vector<std::string> args) {
    const std::string socket = std::get<net::UnixEndpoint>(d.endpoint()).path;
    std::vector<std::string> argv = {SPIRIT_CLI, "--socket", socket, "--token", token};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv);
}

std::unique_ptr<net::Client> connect(const test::Daemon& d, const std::string& token) {
    net::ClientOptions o;
    o.endpoint = d.endpoint();
    o.reconnect = false;
    o.token = token;
    auto c = net::Client::connect(o);
    REQUIRE(c);
    return std::move(*c);
}

std::string table_line(std::uint64_t seq) {
    return fmt::format("{:<10} {:<6} {:<32}  {:<12}  {}", seq, 1, id_hex(seq), "test",
                       payload_of(seq));
}

}  // namespace

TEST_CASE("the quarantine is listed, shown and republished through spiritd", "[integration]") {
    test::Daemon d(options());
    prepare(d.data_dir());
    d.start();

    SECTION("quarantine ls shows q with 5 events, seqs 16 to 20, all of epoch 1") {
        auto r = spirit_cli(d, full_token, {"quarantine", "ls"});
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out ==
              "STREAM                                      EVENTS  SEQS                   "
              "EPOCHS (EVENTS)\n"
              "q                                                5  16..20                 1 (5)\n");
        auto named = spirit_cli(d, full_token, {"quarantine", "ls", "q"});
        CHECK(named.out == r.out);
        auto json = spirit_cli(d, full_token, {"quarantine", "ls", "--json"});
        CHECK(json.out ==
              "{\"stream\":\"q\",\"events\":5,\"first_seq\":16,\"last_seq\":20,"
              "\"epochs\":[{\"epoch\":1,\"events\":5}]}\n");
        auto none = spirit_cli(d, full_token, {"quarantine", "ls", "other.x"});
        CHECK(none.exit_code == 0);
        CHECK(none.out == "no quarantined events\n");
    }

    SECTION("quarantine show prints each event with its id, type and payload") {
        auto r = spirit_cli(d, full_token, {"quarantine", "show", "q"});
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 0);
        std::string want =
            "SEQ        EPOCH  ID                                TYPE          PAYLOAD\n";
        for (std::uint64_t seq = 16; seq <= 20; ++seq) want += table_line(seq) + "\n";
        CHECK(r.out == want);

        auto from = spirit_cli(d, full_token, {"quarantine", "show", "q", "--from", "18"});
        CHECK(from.out.find(table_line(17)) == std::string::npos);
        CHECK_THAT(from.out,
                   Contains(table_line(18) + "\n" + table_line(19) + "\n" + table_line(20) + "\n"));
        auto limited = spirit_cli(d, full_token, {"quarantine", "show", "q", "--limit", "2"});
        CHECK(limited.out ==
              "SEQ        EPOCH  ID                                TYPE          "
              "PAYLOAD\n" +
                  table_line(16) + "\n" + table_line(17) + "\n");
        auto json = spirit_cli(d, full_token, {"quarantine", "show", "q", "--json"});
        CHECK_THAT(json.out, Contains("\"stream\":\"q\",\"seq\":16,\"epoch\":1,"));
        CHECK_THAT(json.out, Contains("\"id\":\"" + id_hex(20) +
                                      "\",\"type\":\"test\",\"payload\":\"event-20\""));
        auto empty = spirit_cli(d, full_token, {"quarantine", "show", "nothing.here"});
        CHECK(empty.exit_code == 0);
        CHECK(empty.out == "no quarantined events\n");
    }

    SECTION("the client library lists and pages through the quarantine") {
        auto c = connect(d, full_token);
        auto list = c->quarantine_list("");
        REQUIRE(list);
        REQUIRE(list->streams.size() == 1);
        CHECK(list->streams[0].stream == "q");
        CHECK(list->streams[0].events == 5);
        CHECK(list->streams[0].first_seq == core::Seq{16});
        CHECK(list->streams[0].last_seq == core::Seq{20});
        auto all = c->quarantine_read("q", core::Seq{0}, 100);
        REQUIRE(all);
        REQUIRE(all->entries.size() == 5);
        CHECK_FALSE(all->next);
        for (std::uint64_t i = 0; i < 5; ++i) {
            CHECK(all->entries[i].seq == core::Seq{16 + i});
            CHECK(all->entries[i].epoch == core::Epoch{1});
            CHECK(all->entries[i].id == test::event_id(16 + i));
            CHECK(core::as_chars(all->entries[i].payload) == payload_of(16 + i));
        }
        // Pages of two, each continuing where the one before ended.
        std::vector<std::uint64_t> seqs;
        auto page = c->quarantine_read("q", core::Seq{0}, 2);
        while (true) {
            REQUIRE(page);
            CHECK(page->entries.size() <= 2);
            for (const core::Envelope& e : page->entries) seqs.push_back(e.seq.value());
            if (!page->next) break;
            page = c->quarantine_read("q", *page->next, 2);
        }
        CHECK(seqs == std::vector<std::uint64_t>{16, 17, 18, 19, 20});
        auto after = c->quarantine_read("q", core::Seq{18}, 0);
        REQUIRE(after);
        REQUIRE(after->entries.size() == 2);
        CHECK(after->entries[0].seq == core::Seq{19});
    }

    SECTION("republish adds the event as the stream's next, once") {
        auto r = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17"});
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out == "16\n");
        auto event = spirit_cli(d, full_token, {"sub", "q", "--from", "16", "--count", "1"});
        CHECK_THAT(event.out, Contains("\"stream\":\"q\",\"seq\":16,\"epoch\":1,"));
        CHECK_THAT(event.out, Contains("\"id\":\"" + id_hex(17) +
                                       "\",\"type\":\"test\",\"payload\":\"event-17\""));

        auto again = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17:1"});
        CHECK(again.exit_code == 0);
        CHECK(again.out == "16 duplicate\n");
        auto c = connect(d, full_token);
        auto info = c->stream_info("q");
        REQUIRE(info);
        CHECK(info->last_seq == core::Seq{16});
        // The quarantine keeps what was republished.
        auto list = c->quarantine_list("q");
        REQUIRE(list);
        REQUIRE(list->streams.size() == 1);
        CHECK(list->streams[0].events == 5);

        // Several at once, in the order given; the repeat inside is a duplicate.
        auto receipt = c->quarantine_republish("q", {{core::Seq{20}, std::nullopt},
                                                     {core::Seq{18}, core::Epoch{1}},
                                                     {core::Seq{17}, std::nullopt}});
        REQUIRE(receipt);
        CHECK(receipt->first_seq == core::Seq{17});
        CHECK(receipt->last_seq == core::Seq{18});
        REQUIRE(receipt->duplicates.size() == 1);
        CHECK(receipt->duplicates[0].index == 2);
        CHECK(receipt->duplicates[0].seq == core::Seq{16});
    }

    SECTION("an entry that is not in the quarantine is not_found, naming it") {
        auto r = spirit_cli(d, full_token, {"quarantine", "republish", "q", "99"});
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        CHECK(r.err == "spirit: stream q: no quarantined event at seq 99 (not_found)\n");
        // Given with an epoch, the daemon itself looks and refuses it.
        auto daemon_says =
            spirit_cli(d, full_token, {"quarantine", "republish", "q", "16", "17:2"});
        CHECK(daemon_says.exit_code == 1);
        CHECK(daemon_says.err ==
              "spirit: stream q: no quarantined event at seq 17 epoch 2 (not_found)\n");
        auto c = connect(d, full_token);
        auto info = c->stream_info("q");
        REQUIRE(info);
        CHECK(info->last_seq == core::Seq{15});  // nothing of the refused batch was stored
        auto bad = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17:x"});
        CHECK(bad.exit_code == 2);
        CHECK(bad.err == "spirit: 17:x: expected SEQ or SEQ:EPOCH (numbers from 1)\n");
    }

    SECTION("a grant without a right on q may not read or republish its quarantine") {
        auto ls = spirit_cli(d, other_token, {"quarantine", "ls", "q"});
        CHECK(ls.exit_code == 1);
        CHECK(ls.err ==
              "spirit: this token may not read the quarantine of q (it may not subscribe to it) "
              "(unauthorized)\n");
        auto show = spirit_cli(d, other_token, {"quarantine", "show", "q"});
        CHECK(show.exit_code == 1);
        CHECK_THAT(show.err, Contains("may not read the quarantine of q"));
        CHECK_THAT(show.err, Contains("(unauthorized)"));
        // Listing every stream leaves out those the token may not read.
        auto all = spirit_cli(d, other_token, {"quarantine", "ls"});
        CHECK(all.exit_code == 0);
        CHECK(all.out == "no quarantined events\n");
        auto republish = spirit_cli(d, other_token, {"quarantine", "republish", "q", "17:1"});
        CHECK(republish.exit_code == 1);
        CHECK(republish.err == "spirit: this token may not publish to q (unauthorized)\n");

        // Reading needs subscribe, republishing publish.
        auto reader = connect(d, reader_token);
        auto page = reader->quarantine_read("q", core::Seq{0}, 0);
        REQUIRE(page);
        CHECK(page->entries.size() == 5);
        auto refused = reader->quarantine_republish("q", {{core::Seq{17}, std::nullopt}});
        REQUIRE_FALSE(refused);
        CHECK(refused.error().is(core::errc::unauthorized));
        CHECK(refused.error().detail == "this token may not publish to q");
    }

    SECTION("cluster set-master on a node alone is invalid_argument; status still works") {
        auto r = spirit_cli(d, full_token, {"cluster", "set-master", "node-b"});
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        CHECK(r.err == "spirit: this node is not in a cluster (invalid_argument)\n");
        auto no_admin = spirit_cli(d, other_token, {"cluster", "set-master", "node-b"});
        CHECK(no_admin.exit_code == 1);
        CHECK(no_admin.err ==
              "spirit: this token may not name the master (its grant has admin = false) "
              "(unauthorized)\n");
        auto c = connect(d, full_token);
        auto refused = c->set_master("node-b");
        REQUIRE_FALSE(refused);
        CHECK(refused.error().is(core::errc::invalid_argument));

        auto status = spirit_cli(d, full_token, {"status"});
        CHECK(status.exit_code == 0);
        CHECK_THAT(status.out, Contains("node            node-1\n"));
        CHECK_THAT(status.out, Contains("role            single (master node-1, epoch 1)\n"
                                        "state           serving\n"));
    }
}

namespace {

// Appends one event per payload to q in `epoch`, ids from `first_id` on,
// then moves everything after seq 15 into the quarantine.
void append_and_cut(storage::Store& store, core::Epoch epoch, std::uint64_t first_id,
                    const std::vector<std::string>& payloads) {
    for (std::size_t i = 0; i < payloads.size(); ++i) {
        const core::EventDraft e{
            test::event_id(first_id + i), "test", {}, core::as_bytes(payloads[i])};
        auto r = store.append_sync({.stream = "q", .events = std::span(&e, 1), .epoch = epoch});
        REQUIRE(r);
    }
    REQUIRE(store.truncate_after_sync("q", core::Seq{15}));
}

}  // namespace

TEST_CASE("a seq quarantined in several epochs is republished by its epoch", "[integration]") {
    test::Daemon d(options());
    prepare(d.data_dir());  // 16..20 of epoch 1
    {
        storage::StoreOptions o;
        o.data_dir = d.data_dir();
        auto store = storage::Store::open(o);
        REQUIRE(store);
        // 16..18 of epoch 2 (ids 101..103), then 16 of epoch 2 again (id 201).
        append_and_cut(**store, core::Epoch{2}, 101, {"b-16", "b-17", "b-18"});
        append_and_cut(**store, core::Epoch{2}, 201, {"c-16"});
    }
    d.start();

    auto ls = spirit_cli(d, full_token, {"quarantine", "ls", "q"});
    CHECK(ls.out ==
          "STREAM                                      EVENTS  SEQS                   "
          "EPOCHS (EVENTS)\n"
          "q                                                9  16..20                 "
          "1 (5), 2 (4)\n");
    auto c = connect(d, full_token);
    auto page = c->quarantine_read("q", core::Seq{16}, 0);
    REQUIRE(page);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> order;
    for (const core::Envelope& e : page->entries)
        order.emplace_back(e.seq.value(), e.epoch.value());
    CHECK(order == std::vector<std::pair<std::uint64_t, std::uint64_t>>{
                       {17, 1}, {17, 2}, {18, 1}, {18, 2}, {19, 1}, {20, 1}});

    auto bare = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17"});
    CHECK(bare.exit_code == 1);
    CHECK(bare.err ==
          "spirit: stream q: seq 17 is quarantined in epochs 1, 2; name one (seq:epoch) "
          "(invalid_argument)\n");
    auto twice = spirit_cli(d, full_token, {"quarantine", "republish", "q", "16:2"});
    CHECK(twice.exit_code == 1);
    CHECK_THAT(twice.err, Contains("spirit: stream q: two quarantined events at seq 16 epoch 2 "));
    CHECK_THAT(twice.err, Contains("(invalid_argument)"));

    auto chosen = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17:2", "18"});
    INFO("stderr: " << chosen.err);
    CHECK(chosen.exit_code == 1);  // 18 is quarantined in epochs 1 and 2 too
    auto one = spirit_cli(d, full_token, {"quarantine", "republish", "q", "17:2", "19"});
    INFO("stderr: " << one.err);
    CHECK(one.exit_code == 0);
    CHECK(one.out == "16..17\n");
    auto events = spirit_cli(d, full_token, {"sub", "q", "--from", "16", "--count", "2"});
    CHECK_THAT(events.out, Contains("\"seq\":16,\"epoch\":2,"));
    CHECK_THAT(events.out,
               Contains("\"id\":\"" + id_hex(102) + "\",\"type\":\"test\",\"payload\":\"b-17\""));
    CHECK_THAT(events.out, Contains("\"seq\":17,\"epoch\":2,"));
    CHECK_THAT(events.out, Contains("\"id\":\"" + id_hex(19) +
                                    "\",\"type\":\"test\",\"payload\":\"event-19\""));
}

TEST_CASE(
    "a quarantine of large events is read in pages of about 1 MiB and republished at most "
    "a batch at a time",
    "[integration]") {
    test::Daemon d(options());
    {
        storage::StoreOptions o;
        o.data_dir = d.data_dir();
        auto store = storage::Store::open(o);
        REQUIRE(store);
        // big: seq 1 small, 2..10 of 1,000,000 bytes each, then cut after 1.
        std::vector<std::string> payloads = {"small"};
        for (char c = 'a'; c < 'j'; ++c) payloads.push_back(std::string(1'000'000, c));
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            const core::EventDraft e{
                test::event_id(1000 + i), "blob", {}, core::as_bytes(payloads[i])};
            REQUIRE((*store)->append_sync({.stream = "big", .events = std::span(&e, 1)}));
        }
        REQUIRE((*store)->truncate_after_sync("big", core::Seq{1}));
    }
    d.start();
    auto c = connect(d, full_token);

    std::vector<std::uint64_t> seqs;
    auto page = c->quarantine_read("big", core::Seq{0}, 0);
    while (true) {
        REQUIRE(page);
        CHECK(page->entries.size() == 1);  // a second would take the page over 1 MiB
        for (const core::Envelope& e : page->entries) {
            CHECK(e.payload.size() == 1'000'000);
            seqs.push_back(e.seq.value());
        }
        if (!page->next) break;
        page = c->quarantine_read("big", *page->next, 0);
    }
    CHECK(seqs == std::vector<std::uint64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10});

    std::vector<net::QuarantineRef> all;
    for (std::uint64_t seq = 2; seq <= 10; ++seq) all.emplace_back(core::Seq{seq}, core::Epoch{1});
    auto over = c->quarantine_republish("big", all);
    REQUIRE_FALSE(over);
    CHECK(over.error().is(core::errc::limit_exceeded));
    CHECK(over.error().detail ==
          "stream big: republishing these 9 events is an append of more than 8388608 bytes; "
          "republish fewer at once");
    all.resize(8);
    auto fits = c->quarantine_republish("big", all);
    REQUIRE(fits);
    CHECK(fits->first_seq == core::Seq{2});
    CHECK(fits->last_seq == core::Seq{9});
}
