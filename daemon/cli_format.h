// daemon/cli_format.h: text helpers of the spirit CLI: JSON strings,
// base64, RFC 3339 timestamps, the lines `spirit pub` prints for an
// acknowledgement, the tables of `spirit quarantine`. Pure functions,
// unit-tested (tests/daemon/cli_format_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/result.h"
#include "net/client.h"

namespace spirit::daemon::cli {

// A JSON string literal (quotes included) for UTF-8 text.
std::string json_string(std::string_view text);
// Standard base64 with padding.
std::string base64(core::ByteView bytes);
// "2026-11-22T03:04:05.123456789Z" for nanoseconds since the Unix epoch.
std::string rfc3339(std::uint64_t ns);
// Parses RFC 3339 ("2026-11-22T03:04:05Z", fractions, "+01:00" offsets) to
// nanoseconds since the Unix epoch; nullopt if the text is not one.
std::optional<std::uint64_t> parse_rfc3339(std::string_view text);

// How `spirit pub` prints each acknowledgement.
enum class AckStyle {
    brief,    // the default: the seq, and what else the ack is when it is not a plain commit
    verbose,  // --verbose: kind, seq range, epoch and holders, as words
    json,     // --json: one JSON object per line, fields named as PublishAck's (protocol.md)
};

// "durable", "replicated" or "accepted".
std::string_view ack_kind_name(core::protocol::AckKind kind);

// One line, without the newline, for the receipt of one publish:
//   brief    5                             durable: the seq (5..7 for several)
//            5 replicated on node-a, node-b
//            5 duplicate                   every event was stored before, as seq 5
//            accepted by node-b (outbox)   no seq yet: the master has not ordered it
//   verbose  durable seq 5 epoch 1 holders node-1
//            durable duplicate of seq 5 epoch 1 holders node-1
//            accepted seq - epoch 0 holders node-b
//   json     {"kind":"durable","first_seq":5,"last_seq":5,"epoch":1,
//             "timestamp_ns":...,"duplicates":[{"index":0,"seq":5}],"holders":["node-1"]}
std::string ack_line(const net::PublishReceipt& receipt, AckStyle style);

// A failed publish as one JSON line, without the newline:
// {"error":"expected_seq_mismatch","message":"stream orders: ..."}.
std::string error_json(const core::Error& error);

// Bytes as text when they are printable UTF-8 (no control characters),
// else "0x" and their hex; "(empty)" for none.
std::string printable_or_hex(core::ByteView bytes);

// `spirit quarantine ls`: the header, and one row per stream, without the
// newline:
//   STREAM                                      EVENTS  SEQS                   EPOCHS (EVENTS)
//   orders                                           5  16..20                 1 (2), 3 (3)
std::string quarantine_header();
std::string quarantine_row(const core::protocol::QuarantineStream& stream);
// --json: {"stream":"orders","events":5,"first_seq":16,"last_seq":20,
//          "epochs":[{"epoch":1,"events":2},{"epoch":3,"events":3}]}
std::string quarantine_json(const core::protocol::QuarantineStream& stream);

// `spirit quarantine show`: the header, and one row per event (the payload
// as printable_or_hex writes it; "-" for no type):
//   SEQ        EPOCH  ID                                TYPE          PAYLOAD
//   16         1      000102030405060708090a0b0c0d0e0f  placed        {"sku":"A-1"}
std::string quarantined_event_header();
std::string quarantined_event_row(const core::Envelope& event);

}  // namespace spirit::daemon::cli
