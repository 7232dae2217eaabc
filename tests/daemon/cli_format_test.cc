// What `spirit pub` prints for an acknowledgement (daemon/cli_format.h):
// each ack kind (durable, replicated, accepted, all duplicates) in each
// style (brief, --verbose, --json), checked against exact lines, so an
// `accepted` ack can never again print as "0", a seq it does not have.
// The JSON lines are also checked to name PublishAck's fields.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "daemon/cli_format.h"

using namespace spirit;
namespace proto = core::protocol;
using daemon::cli::AckStyle;

namespace {

net::PublishReceipt durable() {
    net::PublishReceipt r;
    r.kind = proto::AckKind::durable;
    r.first_seq = core::Seq{5};
    r.last_seq = core::Seq{5};
    r.epoch = core::Epoch{1};
    r.timestamp_ns = core::TimestampNs{1'700'000'000'000'000'000};
    r.holders = {"node-1"};
    return r;
}

net::PublishReceipt range() {
    net::PublishReceipt r = durable();
    r.last_seq = core::Seq{7};
    return r;
}

net::PublishReceipt replicated() {
    net::PublishReceipt r = durable();
    r.kind = proto::AckKind::replicated;
    r.epoch = core::Epoch{2};
    r.holders = {"node-a", "node-b"};
    return r;
}

net::PublishReceipt accepted() {
    net::PublishReceipt r;
    r.kind = proto::AckKind::accepted;
    r.epoch = core::Epoch{0};
    r.timestamp_ns = core::TimestampNs{1'700'000'000'000'000'000};
    r.holders = {"node-b"};
    return r;
}

net::PublishReceipt duplicate() {
    net::PublishReceipt r = durable();
    r.first_seq = core::Seq{0};
    r.last_seq = core::Seq{0};
    r.duplicates = {proto::Duplicate{0, core::Seq{5}}};
    return r;
}

net::PublishReceipt receipt(const std::string& which) {
    if (which == "durable") return durable();
    if (which == "range") return range();
    if (which == "replicated") return replicated();
    if (which == "accepted") return accepted();
    return duplicate();
}

}  // namespace

TEST_CASE("spirit pub prints each ack kind in each style", "[daemon][unit]") {
    auto [which, style, line] = GENERATE(table<std::string, AckStyle, std::string>({
        {"durable", AckStyle::brief, "5"},
        {"range", AckStyle::brief, "5..7"},
        {"replicated", AckStyle::brief, "5 replicated on node-a, node-b"},
        {"accepted", AckStyle::brief, "accepted by node-b (outbox)"},
        {"duplicate", AckStyle::brief, "5 duplicate"},
        {"durable", AckStyle::verbose, "durable seq 5 epoch 1 holders node-1"},
        {"range", AckStyle::verbose, "durable seq 5..7 epoch 1 holders node-1"},
        {"replicated", AckStyle::verbose, "replicated seq 5 epoch 2 holders node-a,node-b"},
        {"accepted", AckStyle::verbose, "accepted seq - epoch 0 holders node-b"},
        {"duplicate", AckStyle::verbose, "durable duplicate of seq 5 epoch 1 holders node-1"},
        {"durable", AckStyle::json,
         R"({"kind":"durable","first_seq":5,"last_seq":5,"epoch":1,)"
         R"("timestamp_ns":1700000000000000000,"duplicates":[],"holders":["node-1"]})"},
        {"replicated", AckStyle::json,
         R"({"kind":"replicated","first_seq":5,"last_seq":5,"epoch":2,)"
         R"("timestamp_ns":1700000000000000000,"duplicates":[],"holders":["node-a","node-b"]})"},
        {"accepted", AckStyle::json,
         R"({"kind":"accepted","first_seq":0,"last_seq":0,"epoch":0,)"
         R"("timestamp_ns":1700000000000000000,"duplicates":[],"holders":["node-b"]})"},
        {"duplicate", AckStyle::json,
         R"({"kind":"durable","first_seq":0,"last_seq":0,"epoch":1,)"
         R"("timestamp_ns":1700000000000000000,"duplicates":[{"index":0,"seq":5}],)"
         R"("holders":["node-1"]})"},
    }));
    INFO(which << " style " << static_cast<int>(style));
    CHECK(daemon::cli::ack_line(receipt(which), style) == line);
}

TEST_CASE("an accepted ack never prints a seq", "[daemon][unit]") {
    const net::PublishReceipt r = accepted();
    const std::string brief = daemon::cli::ack_line(r, AckStyle::brief);
    CHECK(brief.find('0') == std::string::npos);
    CHECK(brief.rfind("accepted", 0) == 0);
    net::PublishReceipt nobody = r;
    nobody.holders.clear();
    CHECK(daemon::cli::ack_line(nobody, AckStyle::brief) == "accepted (outbox)");
}

TEST_CASE("a failed publish in --json names the error code and says why", "[daemon][unit]") {
    const core::Error e{core::make_error_code(core::errc::expected_seq_mismatch),
                        "stream orders: expected last seq 1, but it is \"2\""};
    CHECK(daemon::cli::error_json(e) ==
          R"({"error":"expected_seq_mismatch","message":"stream orders: expected last seq 1, )"
          R"(but it is \"2\""})");
}

TEST_CASE("payloads print as text when printable, else as hex", "[daemon][unit]") {
    using daemon::cli::printable_or_hex;
    CHECK(printable_or_hex(core::as_bytes(std::string_view(R"({"sku":"A-1"})"))) ==
          R"({"sku":"A-1"})");
    CHECK(printable_or_hex(core::as_bytes(std::string_view("caf\xc3\xa9"))) == "caf\xc3\xa9");
    CHECK(printable_or_hex(core::as_bytes(std::string_view("two\nlines"))) ==
          "0x74776f0a6c696e6573");
    CHECK(printable_or_hex(core::as_bytes(std::string_view("\xff\x01"))) == "0xff01");
    CHECK(printable_or_hex(core::as_bytes(std::string_view("del\x7f"))) == "0x64656c7f");
    CHECK(printable_or_hex({}) == "(empty)");
}

TEST_CASE("spirit quarantine ls prints a row per stream, and JSON with --json",
          "[daemon][unit]") {
    const proto::QuarantineStream q{"orders",
                                    5,
                                    core::Seq{16},
                                    core::Seq{20},
                                    {{core::Epoch{1}, 2}, {core::Epoch{3}, 3}}};
    // The columns line up under the header.
    CHECK(daemon::cli::quarantine_header() ==
          "STREAM                                      EVENTS  SEQS                   "
          "EPOCHS (EVENTS)");
    CHECK(daemon::cli::quarantine_row(q) ==
          "orders                                           5  16..20                 "
          "1 (2), 3 (3)");
    CHECK(daemon::cli::quarantine_json(q) ==
          R"({"stream":"orders","events":5,"first_seq":16,"last_seq":20,)"
          R"("epochs":[{"epoch":1,"events":2},{"epoch":3,"events":3}]})");
}

TEST_CASE("spirit quarantine show prints seq, epoch, id, type and payload per event",
          "[daemon][unit]") {
    const std::string payload = R"({"sku":"A-1"})";
    core::Envelope e;
    e.stream = "orders";
    e.seq = core::Seq{16};
    e.epoch = core::Epoch{1};
    for (std::size_t i = 0; i < e.id.bytes.size(); ++i) e.id.bytes[i] = std::byte(i);
    e.type = "placed";
    e.payload = core::Bytes(core::as_bytes(payload).begin(), core::as_bytes(payload).end());
    CHECK(daemon::cli::quarantined_event_header() ==
          "SEQ        EPOCH  ID                                TYPE          PAYLOAD");
    CHECK(daemon::cli::quarantined_event_row(e) ==
          "16         1      000102030405060708090a0b0c0d0e0f  placed        {\"sku\":\"A-1\"}");
    e.type.clear();
    e.payload = {std::byte{0}, std::byte{0xff}};
    CHECK(daemon::cli::quarantined_event_row(e) ==
          "16         1      000102030405060708090a0b0c0d0e0f  -             0x00ff");
}
