#include "daemon/cli_format.h"

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/stream_name.h"

namespace spirit::daemon::cli {

std::string json_string(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
    return out;
}

std::string base64(core::ByteView bytes) {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        auto v = (static_cast<unsigned>(bytes[i]) << 16) |
                 (static_cast<unsigned>(bytes[i + 1]) << 8) | static_cast<unsigned>(bytes[i + 2]);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    if (i + 1 == bytes.size()) {
        auto v = static_cast<unsigned>(bytes[i]) << 16;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        auto v =
            (static_cast<unsigned>(bytes[i]) << 16) | (static_cast<unsigned>(bytes[i + 1]) << 8);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string rfc3339(std::uint64_t ns) {
    const auto seconds = static_cast<std::time_t>(ns / 1'000'000'000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ns % 1'000'000'000);
}

namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<std::uint64_t> parse_rfc3339(std::string_view s) {
    int year, month, day, hour, minute, second;
    if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) ||
        s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' ||
        !digits(s, 17, 2, second)) {
        return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    std::size_t at = 19;
    std::uint64_t fraction_ns = 0;
    if (at < s.size() && s[at] == '.') {
        ++at;
        std::uint64_t scale = 100'000'000;
        std::size_t start = at;
        while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
            fraction_ns += static_cast<std::uint64_t>(s[at] - '0') * scale;
            scale /= 10;
            ++at;
        }
        if (at == start) return std::nullopt;
    }
    long offset_seconds = 0;
    if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
        ++at;
    } else if (at < s.size() && (s[at] == '+' || s[at] == '-')) {
        int oh, om;
        if (!digits(s, at + 1, 2, oh) || at + 3 >= s.size() || s[at + 3] != ':' ||
            !digits(s, at + 4, 2, om)) {
            return std::nullopt;
        }
        offset_seconds = (s[at] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
        at += 6;
    } else {
        return std::nullopt;
    }
    if (at != s.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = timegm(&tm) - offset_seconds;
    if (t < 0) return std::nullopt;
    return static_cast<std::uint64_t>(t) * 1'000'000'000 + fraction_ns;
}

std::string_view ack_kind_name(core::protocol::AckKind kind) {
    switch (kind) {
        case core::protocol::AckKind::durable:
            return "durable";
        case core::protocol::AckKind::replicated:
            return "replicated";
        case core::protocol::AckKind::accepted:
            return "accepted";
    }
    return "unknown";
}

namespace {

std::string seq_range(const net::PublishReceipt& r) {
    if (r.first_seq.value() == 0) return "-";
    if (r.last_seq == r.first_seq) return fmt::format("{}", r.first_seq.value());
    return fmt::format("{}..{}", r.first_seq.value(), r.last_seq.value());
}

std::string joined(const std::vector<std::string>& names, std::string_view separator) {
    std::string out;
    for (const std::string& name : names) {
        if (!out.empty()) out += separator;
        out += name;
    }
    return out;
}

bool all_duplicates(const net::PublishReceipt& r) {
    return r.first_seq.value() == 0 && !r.duplicates.empty();
}

}  // namespace

std::string ack_line(const net::PublishReceipt& r, AckStyle style) {
    const std::string_view kind = ack_kind_name(r.kind);
    switch (style) {
        case AckStyle::brief:
            if (r.kind == core::protocol::AckKind::accepted) {
                return r.holders.empty()
                           ? "accepted (outbox)"
                           : fmt::format("accepted by {} (outbox)", joined(r.holders, ", "));
            }
            if (all_duplicates(r)) {
                return fmt::format("{} duplicate", r.duplicates.front().seq.value());
            }
            if (r.kind == core::protocol::AckKind::replicated) {
                return fmt::format("{} replicated on {}", seq_range(r), joined(r.holders, ", "));
            }
            return seq_range(r);
        case AckStyle::verbose: {
            std::string seqs = all_duplicates(r) ? fmt::format("duplicate of seq {}",
                                                               r.duplicates.front().seq.value())
                                                 : "seq " + seq_range(r);
            return fmt::format("{} {} epoch {} holders {}", kind, seqs, r.epoch.value(),
                               r.holders.empty() ? "-" : joined(r.holders, ","));
        }
        case AckStyle::json: {
            std::string duplicates;
            for (const core::protocol::Duplicate& d : r.duplicates) {
                if (!duplicates.empty()) duplicates += ',';
                duplicates += fmt::format("{{\"index\":{},\"seq\":{}}}", d.index, d.seq.value());
            }
            std::string holders;
            for (const std::string& h : r.holders) {
                if (!holders.empty()) holders += ',';
                holders += json_string(h);
            }
            return fmt::format(
                "{{\"kind\":\"{}\",\"first_seq\":{},\"last_seq\":{},\"epoch\":{},"
                "\"timestamp_ns\":{},\"duplicates\":[{}],\"holders\":[{}]}}",
                kind, r.first_seq.value(), r.last_seq.value(), r.epoch.value(),
                r.timestamp_ns.value(), duplicates, holders);
        }
    }
    return {};
}

std::string error_json(const core::Error& e) {
    const std::string code = e.code.category() == core::spirit_category()
                                 ? core::errc_name(static_cast<core::errc>(e.code.value()))
                                 : e.code.message();
    return fmt::format("{{\"error\":{},\"message\":{}}}", json_string(code),
                       json_string(e.detail.empty() ? e.message() : e.detail));
}

std::string printable_or_hex(core::ByteView bytes) {
    if (bytes.empty()) return "(empty)";
    const std::string_view text = core::as_chars(bytes);
    const bool printable =
        core::is_valid_utf8(text) && std::none_of(text.begin(), text.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u < 0x20 || u == 0x7f;
        });
    return printable ? std::string(text) : "0x" + core::to_hex(bytes);
}

std::string quarantine_header() {
    return fmt::format("{:<40} {:>9}  {:<21}  {}", "STREAM", "EVENTS", "SEQS", "EPOCHS (EVENTS)");
}

std::string quarantine_row(const core::protocol::QuarantineStream& q) {
    std::string epochs;
    for (const core::protocol::QuarantineEpochCount& e : q.epochs) {
        if (!epochs.empty()) epochs += ", ";
        epochs += fmt::format("{} ({})", e.epoch.value(), e.events);
    }
    const std::string seqs = fmt::format("{}..{}", q.first_seq.value(), q.last_seq.value());
    return fmt::format("{:<40} {:>9}  {:<21}  {}", q.stream, q.events, seqs, epochs);
}

std::string quarantine_json(const core::protocol::QuarantineStream& q) {
    std::string epochs;
    for (const core::protocol::QuarantineEpochCount& e : q.epochs) {
        if (!epochs.empty()) epochs += ',';
        epochs += fmt::format("{{\"epoch\":{},\"events\":{}}}", e.epoch.value(), e.events);
    }
    return fmt::format(
        "{{\"stream\":{},\"events\":{},\"first_seq\":{},\"last_seq\":{},\"epochs\":[{}]}}",
        json_string(q.stream), q.events, q.first_seq.value(), q.last_seq.value(), epochs);
}

std::string quarantined_event_header() {
    return fmt::format("{:<10} {:<6} {:<32}  {:<12}  {}", "SEQ", "EPOCH", "ID", "TYPE", "PAYLOAD");
}

std::string quarantined_event_row(const core::Envelope& e) {
    const std::string type = e.type.empty() ? "-" : printable_or_hex(core::as_bytes(e.type));
    return fmt::format("{:<10} {:<6} {:<32}  {:<12}  {}", e.seq.value(), e.epoch.value(),
                       core::to_hex(core::ByteView(e.id.bytes)), type, printable_or_hex(e.payload));
}

}  // namespace spirit::daemon::cli
