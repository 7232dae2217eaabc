#include "tests/support/protocol_example.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <optional>
#include <string_view>

#include "core/codec.h"
#include "core/hash_chain.h"

namespace spirit::test {

namespace {

namespace proto = core::protocol;

bool is_hex_line(std::string_view line) {
    const auto start = line.find_first_not_of(' ');
    if (start == std::string_view::npos || start == 0) return false;
    for (char c : line.substr(start)) {
        if (c != ' ' && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

// The lines of the first ``` block after `heading`, with their line numbers.
std::vector<std::pair<std::size_t, std::string>> example_block(const std::filesystem::path& path,
                                                               std::string_view heading) {
    std::ifstream in(path);
    INFO(path.string());
    REQUIRE(in.good());
    std::vector<std::pair<std::size_t, std::string>> block;
    std::string line;
    std::size_t number = 0;
    enum { before, heading_seen, inside } state = before;
    while (std::getline(in, line)) {
        ++number;
        if (state == before && line == heading)
            state = heading_seen;
        else if (state == heading_seen && line.rfind("```", 0) == 0)
            state = inside;
        else if (state == inside && line.rfind("```", 0) == 0)
            return block;
        else if (state == inside)
            block.emplace_back(number, line);
    }
    FAIL("no code block after \"" << heading << "\" in " << path.string());
    return block;
}

}  // namespace

std::vector<DocumentedFrame> read_documented_session(const std::filesystem::path& markdown) {
    std::vector<DocumentedFrame> frames;
    std::optional<DocumentedFrame> current;
    std::string hex;
    auto finish = [&] {
        if (!current) return;
        auto bytes = core::from_hex(hex);
        INFO(markdown.string() << ":" << current->line << ": " << current->name);
        REQUIRE(bytes);
        current->frame = std::move(*bytes);
        frames.push_back(std::move(*current));
        current.reset();
        hex.clear();
    };
    for (const auto& [number, line] : example_block(markdown, "## An example session")) {
        if (line.empty()) {
            finish();
        } else if (line[0] != ' ') {
            finish();
            current = DocumentedFrame{line, {}, {}, number};
        } else if (current && current->description.empty() && is_hex_line(line)) {
            for (char c : line) {
                if (c != ' ') hex.push_back(c);
            }
        } else if (current) {
            const auto start = line.find_first_not_of(' ');
            if (!current->description.empty()) current->description += ' ';
            current->description += line.substr(start);
        }
    }
    finish();
    return frames;
}

std::filesystem::path protocol_doc() {
    return std::filesystem::path(SPIRIT_SOURCE_DIR) / "docs" / "protocol.md";
}

ExampleSession example_session(core::TimestampNs timestamp) {
    static const std::string payload = R"({"sku":"A-1"})";
    ExampleSession s;
    core::EventId id;
    for (std::size_t i = 0; i < 16; ++i) id.bytes[i] = static_cast<std::byte>(0xa0 + i);
    const core::EnvelopeView e{"orders", core::Seq{1}, core::Epoch{1},          timestamp, id,
                               "placed", {},           core::as_bytes(payload), {}};
    const core::Digest hash = core::seal_envelope(s.envelope, e, core::genesis_hash);
    proto::Publish publish{1, "orders", std::nullopt, {}};
    publish.events.push_back({id, "placed", {}, core::as_bytes(payload)});
    const proto::PublishAck ack{1,
                                proto::AckKind::durable,
                                core::Seq{1},
                                core::Seq{1},
                                core::Epoch{1},
                                timestamp,
                                hash,
                                {},
                                {"node-1"}};
    const std::vector<std::pair<std::string, proto::Message>> messages = {
        {"client Hello", proto::Hello{1, "cli", std::nullopt}},
        {"daemon Welcome", proto::Welcome{1, "node-1", "spiritd 0.1.0", 8454144, 4096}},
        {"client Publish", publish},
        {"daemon PublishAck", ack},
        {"client Subscribe",
         proto::Subscribe{7, "orders", proto::From::first, 0, std::string("billing"), 100, 0}},
        {"daemon Subscribed", proto::Subscribed{7, {{"orders", core::Seq{1}, core::genesis_hash}}}},
        {"daemon Events", proto::Events{7, {s.envelope}}},
        {"client Credit", proto::Credit{7, 1, 0}},
        {"client Ack", proto::Ack{7, "orders", core::Seq{1}}},
        {"client Publish (bad name)", proto::Publish{2, "bad name", std::nullopt, {}}},
        {"daemon Error",
         proto::ErrorReply{2, 103,
                           "stream name \"bad name\" has byte 0x20 at offset 3; allowed are "
                           "letters, digits and _ . : @ / = + -"}},
    };
    for (const auto& [name, message] : messages) {
        core::Bytes frame;
        if (const auto* events = std::get_if<proto::Events>(&message)) {
            // The daemon writes Events with its frame builder.
            proto::EventsFrameBuilder builder(frame, events->subscription_id);
            for (core::ByteView envelope : events->envelopes) builder.add(envelope);
            builder.finish();
        } else {
            proto::encode(frame, message);
        }
        s.frames.push_back(ExampleFrame{name, message, std::move(frame)});
    }
    return s;
}

std::string documented_hex(core::ByteView frame) {
    const std::string hex = core::to_hex(frame);
    std::string out = "  " + hex.substr(0, 8) + "  ";
    constexpr std::size_t per_line = 64;
    for (std::size_t at = 8; at < hex.size(); at += per_line) {
        if (at > 8) out += "\n            ";
        out += hex.substr(at, per_line);
    }
    return out;
}

}  // namespace spirit::test
