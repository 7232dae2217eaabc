// daemon/config.cc: reads and validates spiritd's TOML configuration.
//
// The document is parsed by toml++ and then walked table by table. Each
// table has a fixed list of fields; every key of the document must be one of
// them (a typo is an error, never a silent default), every value must have
// the expected TOML type and lie in its range. The first problem in document
// order stops the walk and becomes a config_invalid error whose detail starts
// with "FILE:LINE:COLUMN: KEY: ", pointing at the key (or, for an array
// element, at the element; for a missing key or a cross-field rule, at the
// table).
#include "daemon/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "daemon/config_reader.h"
namespace spirit::daemon {
namespace config_detail {

using core::errc;
using core::Result;

constexpr std::uint64_t kib = std::uint64_t{1} << 10;
constexpr std::uint64_t mib = std::uint64_t{1} << 20;
constexpr std::uint64_t gib = std::uint64_t{1} << 30;
constexpr std::uint64_t tib = std::uint64_t{1} << 40;
constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

// ---------------------------------------------------------------------------
// Character classes and small text helpers.

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c);
}

bool is_node_id_char(char c) {
    return is_alnum(c) || c == '_' || c == '.' || c == '-';
}

bool is_host_name_char(char c) {
    return is_alnum(c) || c == '.' || c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
    return is_alnum(c) || c == ':' || c == '.' || c == '%';
}

// A byte for a message: 'x' when printable ASCII, else its hex value.
std::string printable(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x21 && u < 0x7f) return fmt::format("'{}'", c);
    return fmt::format("byte 0x{:02x}", u);
}

// Edit distance, for "did you mean" hints on unknown keys.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// ---------------------------------------------------------------------------
// Sizes: a byte count, written as a TOML integer or "<integer><unit>".

struct SizeUnit {
    std::string_view name;
    unsigned shift;
};

constexpr SizeUnit size_units[] = {
    {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
};

// "8256KiB (8454144 bytes)", or "100 bytes" when no unit divides it.
std::string describe_size(std::uint64_t bytes) {
    for (auto it = std::rbegin(size_units); it != std::rend(size_units); ++it) {
        if (it->shift == 0 || bytes == 0) break;
        std::uint64_t unit = std::uint64_t{1} << it->shift;
        if (bytes % unit == 0) {
            return fmt::format("{}{} ({} bytes)", bytes >> it->shift, it->name, bytes);
        }
    }
    return fmt::format("{} bytes", bytes);
}

// Parses "<digits>[unit]"; on failure, says what is wrong with `text`.
tl::expected<std::uint64_t, std::string> parse_size_text(std::string_view text) {
    constexpr std::string_view form =
        "expected a non-negative integer optionally followed by one of B, KiB, MiB, GiB, TiB "
        "(no spaces)";
    std::uint64_t value = 0;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
        auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (u64_max - digit) / 10) {
            return tl::unexpected{fmt::format("size {:?} does not fit in 64 bits", text)};
        }
        value = value * 10 + digit;
    }
    if (i == 0) return tl::unexpected{fmt::format("bad size {:?}: {}", text, form)};
    std::string_view unit_text = text.substr(i);
    if (unit_text.empty()) return value;
    for (const SizeUnit& unit : size_units) {
        if (unit.name != unit_text) continue;
        if (value > (u64_max >> unit.shift)) {
            return tl::unexpected{fmt::format("size {:?} does not fit in 64 bits", text)};
        }
        return value << unit.shift;
    }
    return tl::unexpected{
        fmt::format("bad size {:?}: unknown unit {:?}; {}", text, unit_text, form)};
}

// ---------------------------------------------------------------------------
// TOML nodes.

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::none:
            return "nothing";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
    }
    return "an unknown type";
}

// What a value is, for "expected X, got Y": `the string "x"`, `the integer 5`.
std::string describe(const toml::node& node) {
    if (const auto* s = node.as_string()) return fmt::format("the string {:?}", s->get());
    if (const auto* i = node.as_integer()) return fmt::format("the integer {}", i->get());
    if (const auto* f = node.as_floating_point()) return fmt::format("the float {}", f->get());
    if (const auto* b = node.as_boolean()) return fmt::format("the boolean {}", b->get());
    return std::string{type_name(node.type())};
}

constexpr std::pair<std::string_view, storage::SyncMode> sync_modes[] = {
    {"always", storage::SyncMode::always},
    {"periodic", storage::SyncMode::periodic},
    {"none", storage::SyncMode::none},
};

constexpr std::pair<std::string_view, std::string_view> log_levels[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"},
};

constexpr std::pair<std::string_view, core::Redundancy> redundancies[] = {
    {"eventual", core::Redundancy::eventual},
    {"immediate", core::Redundancy::immediate},
};

Result<void> Reader::walk(const Entry& e, std::span<const Field> fields) const {
    const toml::table* table = e.node->as_table();
    if (table == nullptr) {
        return fail(e, fmt::format("expected a table, got {}", describe(*e.node)));
    }
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [key, value] : *table) entries.emplace_back(&key, &value);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto& pa = a.first->source().begin;
        const auto& pb = b.first->source().begin;
        return std::pair{pa.line, pa.column} < std::pair{pb.line, pb.column};
    });
    for (const auto& [key, value] : entries) {
        Entry child{
            e.path.empty() ? std::string{key->str()} : fmt::format("{}.{}", e.path, key->str()),
            &key->source(), value};
        auto field = std::find_if(fields.begin(), fields.end(),
                                  [&](const Field& f) { return f.name == key->str(); });
        if (field != fields.end()) {
            SPIRIT_TRY(field->read(child));
            continue;
        }
        std::string what =
            value->is_table() || value->is_array_of_tables() ? "unknown table" : "unknown key";
        for (const Field& f : fields) {
            std::size_t distance = edit_distance(f.name, key->str());
            if (distance <= 2 && 2 * distance < f.name.size()) {
                what += fmt::format(" (did you mean {}?)", f.name);
                break;
            }
        }
        return fail(child, what);
    }
    return {};
}

Result<std::string_view> Reader::string_of(const Entry& e) const {
    if (const auto* s = e.node->as_string()) return std::string_view{s->get()};
    return fail(e, fmt::format("expected a string, got {}", describe(*e.node)));
}

Result<std::int64_t> Reader::integer_in(const Entry& e, std::int64_t lo, std::int64_t hi) const {
    const auto* i = e.node->as_integer();
    if (i == nullptr) return fail(e, fmt::format("expected an integer, got {}", describe(*e.node)));
    std::int64_t v = i->get();
    if (v < lo || v > hi) {
        if (hi == i64_max) return fail(e, fmt::format("expected an integer >= {}, got {}", lo, v));
        return fail(e, fmt::format("expected an integer from {} to {}, got {}", lo, hi, v));
    }
    return v;
}

Result<std::uint64_t> Reader::size_in(const Entry& e, std::uint64_t lo, std::uint64_t hi) const {
    std::uint64_t v = 0;
    if (const auto* i = e.node->as_integer()) {
        if (i->get() < 0) {
            return fail(e, fmt::format("bad size {}: a size must not be negative", i->get()));
        }
        v = static_cast<std::uint64_t>(i->get());
    } else if (const auto* s = e.node->as_string()) {
        auto parsed = parse_size_text(s->get());
        if (!parsed) return fail(e, parsed.error());
        v = *parsed;
    } else {
        return fail(e, fmt::format("expected a size (an integer or a string like \"8MiB\"), got {}",
                                   describe(*e.node)));
    }
    if (v < lo || v > hi) {
        return fail(e, fmt::format("expected a size from {} to {}, got {}", describe_size(lo),
                                   describe_size(hi), describe_size(v)));
    }
    return v;
}

Result<std::filesystem::path> Reader::path_of(const Entry& e, bool allow_empty) const {
    auto text = string_of(e);
    if (!text) return core::Unexpected{std::move(text).error()};
    if (text->empty() && !allow_empty) return fail(e, "must not be empty");
    if (text->find('\0') != std::string_view::npos) return fail(e, "contains a NUL byte");
    return std::filesystem::path{std::string{*text}};
}

Result<void> Reader::read(const toml::table& root, Config& config) const {
    const Field fields[] = {
        {"node", [&](const Entry& e) { return read_node(e, config.node); }},
        {"client", [&](const Entry& e) { return read_client(e, config.client); }},
        {"limits", [&](const Entry& e) { return read_limits(e, config.limits); }},
        {"storage", [&](const Entry& e) { return read_storage(e, config.storage); }},
        {"log", [&](const Entry& e) { return read_log(e, config.log); }},
        {"streams", [&](const Entry& e) { return read_streams(e, config.streams); }},
        {"cluster", [&](const Entry& e) { return read_cluster(e, config.cluster); }},
        {"metrics", [&](const Entry& e) { return read_metrics(e, config.metrics); }},
    };
    SPIRIT_TRY(walk(Entry{"", &root.source(), &root}, fields));
    SPIRIT_TRY(check_metrics(root, config));
    return check_cluster(root, config);
}

Result<void> Reader::read_metrics(const Entry& e, Config::Metrics& metrics) const {
    const Field fields[] = {
        {"listen",
         [&](const Entry& f) -> Result<void> {
             auto text = string_of(f);
             if (!text) return core::Unexpected{std::move(text).error()};
             if (text->empty()) {
                 metrics.listen.reset();
                 return {};
             }
             auto host_port = parse_host_port(*text);
             if (!host_port) return fail(f, host_port.error().detail);
             metrics.listen = std::move(*host_port);
             return {};
         }},
        integer("stream_labels_max", metrics.stream_labels_max, 0, 10'000),
        integer("consumer_labels_max", metrics.consumer_labels_max, 0, 10'000),
        integer("health_stall_ms", metrics.health_stall_ms, 1000, 600'000),
    };
    return walk(e, fields);
}

Result<void> Reader::check_metrics(const toml::table& root, const Config& config) const {
    if (!config.metrics.listen) return {};
    const toml::node* table = root.get("metrics");
    const toml::source_region& at = table != nullptr ? table->source() : root.source();
    const HostPort& m = *config.metrics.listen;
    for (const auto& [name, other] : {std::pair{"client.listen", config.client.listen},
                                      std::pair{"cluster.listen", config.cluster.listen}}) {
        if (other && *other == m) {
            return fail(at, "metrics.listen",
                        fmt::format("{}:{} is also {}; give the metrics listener a port of its own",
                                    m.host, m.port, name));
        }
    }
    return {};
}

Result<void> Reader::read_node(const Entry& e, Config::Node& node) const {
    const Field fields[] = {
        {"id",
         [&](const Entry& f) -> Result<void> {
             auto id = string_of(f);
             if (!id) return core::Unexpected{std::move(id).error()};
             if (id->empty() || id->size() > 64) {
                 return fail(f, fmt::format("expected 1 to 64 bytes, got {}", id->size()));
             }
             auto bad = std::find_if_not(id->begin(), id->end(), is_node_id_char);
             if (bad != id->end()) {
                 return fail(f, fmt::format("{:?} has {}; allowed are letters, digits and _ . -",
                                            *id, printable(*bad)));
             }
             node.id = std::string{*id};
             return {};
         }},
        {"data_dir",
         [&](const Entry& f) {
             return path_of(f, false).map(
                 [&](std::filesystem::path p) { node.data_dir = std::move(p); });
         }},
        {"key_file",
         [&](const Entry& f) {
             return path_of(f, true).map(
                 [&](std::filesystem::path p) { node.key_file = std::move(p); });
         }},
    };
    return walk(e, fields);
}

Result<void> Reader::read_client(const Entry& e, Config::Client& client) const {
    const Field fields[] = {
        {"listen",
         [&](const Entry& f) -> Result<void> {
             auto text = string_of(f);
             if (!text) return core::Unexpected{std::move(text).error()};
             if (text->empty()) {
                 client.listen.reset();
                 return {};
             }
             auto host_port = parse_host_port(*text);
             if (!host_port) return fail(f, host_port.error().detail);
             client.listen = std::move(*host_port);
             return {};
         }},
        {"unix_socket",
         [&](const Entry& f) -> Result<void> {
             auto p = path_of(f, true);
             if (!p) return core::Unexpected{std::move(p).error()};
             // sockaddr_un::sun_path holds 108 bytes, the last one a NUL.
             constexpr std::size_t socket_path_bytes_max = 107;
             if (p->native().size() > socket_path_bytes_max) {
                 return fail(f, fmt::format("a Unix socket path has at most {} bytes, got {}",
                                            socket_path_bytes_max, p->native().size()));
             }
             client.unix_socket = std::move(*p);
             return {};
         }},
        {"tokens", [&](const Entry& f) { return read_tokens(f, client.tokens); }},
        {"grants", [&](const Entry& f) { return read_grants(f, client.grants); }},
    };
    SPIRIT_TRY(walk(e, fields));
    // One token, one set of rights.
    std::vector<std::string_view> seen(client.tokens.begin(), client.tokens.end());
    for (const Config::Client::Grant& g : client.grants) seen.push_back(g.token);
    std::sort(seen.begin(), seen.end());
    if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) {
        return fail(e, "a token appears twice in client.tokens and client.grants");
    }
    return {};
}

Result<void> Reader::read_grants(const Entry& e, std::vector<Config::Client::Grant>& grants) const {
    const auto* array = e.node->as_array();
    if (array == nullptr) {
        return fail(e, fmt::format("expected an array of tables ([[client.grants]]), got {}",
                                   describe(*e.node)));
    }
    auto patterns = [&](const Entry& f, std::vector<std::string>& out) -> Result<void> {
        const auto* list = f.node->as_array();
        if (list == nullptr) {
            return fail(
                f, fmt::format("expected an array of stream patterns, got {}", describe(*f.node)));
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const toml::node& element = (*list)[i];
            Entry item{fmt::format("{}[{}]", f.path, i), &element.source(), &element};
            auto pattern = string_of(item);
            if (!pattern) return core::Unexpected{std::move(pattern).error()};
            if (auto valid = validate_pattern(*pattern); !valid) {
                return fail(item, valid.error().detail);
            }
            out.emplace_back(*pattern);
        }
        return {};
    };
    std::vector<Config::Client::Grant> result;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = (*array)[i];
        Entry item{fmt::format("{}[{}]", e.path, i), &element.source(), &element};
        Config::Client::Grant& grant = result.emplace_back();
        const Field fields[] = {
            {"token",
             [&](const Entry& f) -> Result<void> {
                 auto token = token_of(f);
                 if (!token) return core::Unexpected{std::move(token).error()};
                 grant.token = std::string{*token};
                 return {};
             }},
            {"publish", [&](const Entry& f) { return patterns(f, grant.publish); }},
            {"subscribe", [&](const Entry& f) { return patterns(f, grant.subscribe); }},
            {"admin",
             [&](const Entry& f) -> Result<void> {
                 const auto* b = f.node->as_boolean();
                 if (b == nullptr) {
                     return fail(f,
                                 fmt::format("expected true or false, got {}", describe(*f.node)));
                 }
                 grant.admin = b->get();
                 return {};
             }},
        };
        SPIRIT_TRY(walk(item, fields));
        if (grant.token.empty()) {
            return fail(element.source(), item.path, "every [[client.grants]] entry needs a token");
        }
    }
    grants = std::move(result);
    return {};
}

Result<std::string_view> Reader::token_of(const Entry& e) const {
    auto token = string_of(e);
    if (!token) return core::Unexpected{std::move(token).error()};
    if (token->size() < 16 || token->size() > 256) {
        return fail(e, fmt::format("a token has 16 to 256 bytes, got {}", token->size()));
    }
    return *token;
}

Result<void> Reader::read_tokens(const Entry& e, std::vector<std::string>& tokens) const {
    const auto* array = e.node->as_array();
    if (array == nullptr) {
        return fail(e, fmt::format("expected an array of strings, got {}", describe(*e.node)));
    }
    std::vector<std::string> result;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = (*array)[i];
        Entry item{fmt::format("{}[{}]", e.path, i), &element.source(), &element};
        auto token = token_of(item);
        if (!token) return core::Unexpected{std::move(token).error()};
        result.emplace_back(*token);
    }
    tokens = std::move(result);
    return {};
}

Result<void> Reader::read_limits(const Entry& e, Config::Limits& limits) const {
    const Field fields[] = {
        integer("connections_max", limits.connections_max, 1, 100'000),
        size("frame_bytes_max", limits.frame_bytes_max, 4096, core::limits::frame_bytes_max),
        integer("batch_events_max", limits.batch_events_max, 1,
                std::int64_t{core::limits::batch_events_max}),
        integer("subscriptions_per_connection_max", limits.subscriptions_per_connection_max, 1,
                10'000),
        size("pending_bytes_per_connection_max", limits.pending_bytes_per_connection_max, 64 * kib,
             gib),
        size("publish_bytes_in_flight_max", limits.publish_bytes_in_flight_max, mib, 4 * gib),
        integer("hello_timeout_ms", limits.hello_timeout_ms, 100, 600'000),
    };
    SPIRIT_TRY(walk(e, fields));
    if (limits.publish_bytes_in_flight_max < limits.frame_bytes_max) {
        return fail(e.node->source(), fmt::format("{}.publish_bytes_in_flight_max", e.path),
                    fmt::format("must be at least {}.frame_bytes_max, {}; got {}", e.path,
                                describe_size(limits.frame_bytes_max),
                                describe_size(limits.publish_bytes_in_flight_max)));
    }
    return {};
}

Result<void> Reader::read_storage(const Entry& e, Config::Storage& storage) const {
    const Field fields[] = {
        choice<storage::SyncMode>("sync", storage.sync, sync_modes),
        integer("sync_period_ms", storage.sync_period_ms, 1, 60'000),
        size("map_size", storage.map_bytes, mib, tib),
        size("preallocate", storage.preallocate_bytes, 0, gib),
        integer("dedup_window_ms", storage.dedup_window_ms, 1, 86'400'000),
        integer("dedup_events_max", storage.dedup_events_max, 1, 100'000'000),
    };
    return walk(e, fields);
}

Result<void> Reader::read_log(const Entry& e, Config::Log& log) const {
    const Field fields[] = {
        choice<std::string_view>("level", log.level, log_levels),
    };
    return walk(e, fields);
}

Result<void> Reader::read_streams(const Entry& e, std::vector<StreamDefaults>& streams) const {
    const auto* array = e.node->as_array();
    if (array == nullptr) {
        return fail(
            e, fmt::format("expected an array of tables ([[streams]]), got {}", describe(*e.node)));
    }
    std::vector<StreamDefaults> result;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = (*array)[i];
        Entry item{fmt::format("{}[{}]", e.path, i), &element.source(), &element};
        SPIRIT_TRY(read_stream(item, result.emplace_back()));
    }
    streams = std::move(result);
    return {};
}

Result<void> Reader::read_stream(const Entry& e, StreamDefaults& stream) const {
    bool has_pattern = false;
    core::Retention& retention = stream.policy.retention;
    const Field fields[] = {
        {"pattern",
         [&](const Entry& f) -> Result<void> {
             auto pattern = string_of(f);
             if (!pattern) return core::Unexpected{std::move(pattern).error()};
             if (auto valid = validate_pattern(*pattern); !valid) {
                 return fail(f, valid.error().detail);
             }
             stream.pattern = std::string{*pattern};
             has_pattern = true;
             return {};
         }},
        choice<core::Redundancy>("redundancy", stream.policy.redundancy, redundancies),
        {"acks", [&](const Entry& f) { return read_acks(f, stream.policy.acks); }},
        integer("retention_events_max", retention.events_max, 0, i64_max),
        size("retention_bytes_max", retention.bytes_max, 0, u64_max),
        integer("retention_age_ms", retention.age_ms_max, 0, i64_max),
    };
    SPIRIT_TRY(walk(e, fields));
    if (!has_pattern) {
        return fail(e.node->source(), fmt::format("{}.pattern", e.path),
                    "missing; every [[streams]] entry needs a pattern");
    }
    return {};
}

Result<void> Reader::read_acks(const Entry& e, core::Acks& acks) const {
    constexpr std::string_view expected =
        "expected \"majority\", \"all\" or an integer from 1 to 255";
    if (const auto* s = e.node->as_string()) {
        if (s->get() == "majority") {
            acks = core::Acks{core::Acks::Kind::majority, 0};
        } else if (s->get() == "all") {
            acks = core::Acks{core::Acks::Kind::all, 0};
        } else {
            return fail(e, fmt::format("{}, got {:?}", expected, s->get()));
        }
        return {};
    }
    if (const auto* i = e.node->as_integer()) {
        if (i->get() < 1 || i->get() > 255) {
            return fail(e, fmt::format("{}, got {}", expected, i->get()));
        }
        acks = core::Acks{core::Acks::Kind::count, static_cast<std::uint8_t>(i->get())};
        return {};
    }
    return fail(e, fmt::format("{}, got {}", expected, describe(*e.node)));
}

}  // namespace config_detail

using config_detail::is_digit;
using config_detail::is_host_name_char;
using config_detail::is_ipv6_char;
using config_detail::printable;
using config_detail::Reader;
using core::errc;
using core::Result;

// ---------------------------------------------------------------------------
// Public functions.

Result<HostPort> parse_host_port(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return core::make_error(errc::config_invalid,
                                fmt::format("bad host:port {:?}: {}", text, why));
    };
    std::string_view host;
    std::string_view rest;
    if (text.starts_with('[')) {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("missing ']' after an IPv6 address");
        host = text.substr(1, close - 1);
        rest = text.substr(close + 1);
        if (host.empty()) return bad("empty IPv6 address between '[' and ']'");
        if (host.find(':') == std::string_view::npos ||
            !std::all_of(host.begin(), host.end(), is_ipv6_char)) {
            return bad(fmt::format("{:?} is not an IPv6 address", host));
        }
        if (!rest.starts_with(':')) return bad("expected ':port' after ']'");
    } else {
        std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad("missing ':port'");
        host = text.substr(0, colon);
        rest = text.substr(colon);
        if (host.find(':') != std::string_view::npos) {
            return bad("an IPv6 address needs brackets, as in \"[::1]:7700\"");
        }
        if (host.empty()) return bad("empty host (0.0.0.0 or [::] listen on every interface)");
        if (host.size() > 253) return bad("host name longer than 253 bytes");
        auto c = std::find_if_not(host.begin(), host.end(), is_host_name_char);
        if (c != host.end()) {
            return bad(
                fmt::format("host has {}; allowed are letters, digits and . - _", printable(*c)));
        }
    }
    std::string_view port_text = rest.substr(1);
    std::uint32_t port = 0;
    bool digits_only = !port_text.empty() && port_text.size() <= 5 &&
                       std::all_of(port_text.begin(), port_text.end(), is_digit);
    for (char c : port_text) {
        if (!digits_only) break;
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (!digits_only || port < 1 || port > 65535) {
        return bad(fmt::format("port {:?} is not an integer from 1 to 65535", port_text));
    }
    return HostPort{std::string{host}, static_cast<std::uint16_t>(port)};
}

std::size_t Config::copies_required(const core::Acks& acks) const {
    switch (acks.kind) {
        case core::Acks::Kind::majority:
            return replicas() / 2 + 1;
        case core::Acks::Kind::all:
            return replicas();
        case core::Acks::Kind::count:
            return std::clamp<std::size_t>(acks.count, 1, replicas());
    }
    return replicas();
}

core::StreamPolicy Config::policy_for(std::string_view name) const {
    for (const StreamDefaults& defaults : streams) {
        if (pattern_matches(defaults.pattern, name)) return defaults.policy;
    }
    return core::StreamPolicy{};
}

storage::StoreOptions Config::store_options() const {
    storage::StoreOptions options;
    options.data_dir = node.data_dir;
    options.map_bytes = storage.map_bytes;
    options.preallocate_bytes = storage.preallocate_bytes;
    options.sync_mode = storage.sync;
    options.sync_period_ms = storage.sync_period_ms;
    options.dedup_window_ms = storage.dedup_window_ms;
    options.dedup_events_max = storage.dedup_events_max;
    return options;
}

Result<Config> load_config(const std::filesystem::path& path) {
    auto cannot_read = [&](int error) {
        return core::make_error(
            errc::config_invalid,
            fmt::format("{}: cannot read: {}", path.string(), std::strerror(error)));
    };
    errno = 0;
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return cannot_read(errno);
    std::string text;
    char buffer[16384];
    while (true) {
        std::size_t n = std::fread(buffer, 1, sizeof buffer, file);
        text.append(buffer, n);
        if (n < sizeof buffer) break;
    }
    int error = std::ferror(file) != 0 ? (errno != 0 ? errno : EIO) : 0;
    std::fclose(file);
    if (error != 0) return cannot_read(error);
    return parse_config(text, path.string());
}

Result<Config> parse_config(std::string_view text, std::string_view source) {
    toml::table root;
    try {
        root = toml::parse(text, std::string{source});
    } catch (const toml::parse_error& e) {
        return core::make_error(errc::config_invalid,
                                fmt::format("{}:{}:{}: {}", source, e.source().begin.line,
                                            e.source().begin.column, e.description()));
    }
    Config config;
    config.source = std::filesystem::path{std::string{source}};
    SPIRIT_TRY(Reader{source}.read(root, config));
    return config;
}

}  // namespace spirit::daemon
