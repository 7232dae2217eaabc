// daemon/config_reader.h: internal to daemon/config*.cc. The TOML walker
// that reads a document into a Config (daemon/config.h): one Entry per key
// being read, one Field per key a table may have, and the Reader whose
// methods read each table and report the first problem as config_invalid
// naming FILE:LINE:COLUMN: KEY. config.cc reads the node, client, limits,
// storage, log and streams tables; config_cluster.cc the cluster.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "daemon/config.h"

namespace spirit::daemon::config_detail {

using core::errc;
using core::Result;

inline constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

// A node id's characters: letters, digits and _ . -
bool is_node_id_char(char c);
// A byte for a message: 'x' when printable ASCII, else its hex value.
std::string printable(char c);
// Edit distance, for "did you mean" hints on unknown keys.
std::size_t edit_distance(std::string_view a, std::string_view b);
// What a value is, for "expected X, got Y": `the string "x"`, `the integer 5`.
std::string describe(const toml::node& node);

// One key (or array element) being read: its dotted path for messages, where
// it is in the file, and its value.
struct Entry {
    std::string path;
    const toml::source_region* at;
    const toml::node* node;
};

using FieldReader = std::function<Result<void>(const Entry&)>;

struct Field {
    std::string_view name;
    FieldReader read;
};

template <class T>
using Choices = std::span<const std::pair<std::string_view, T>>;

// Walks a parsed document into a Config. Every failure names `file_`.
class Reader {
 public:
    explicit Reader(std::string_view file) : file_(file) {}

    Result<void> read(const toml::table& root, Config& config) const;

 private:
    core::Unexpected fail(const toml::source_region& at, std::string_view path,
                          std::string_view what) const {
        // Regions without a position (none in parsed documents) point at 1:1.
        auto line = std::max<toml::source_index>(at.begin.line, 1);
        auto column = std::max<toml::source_index>(at.begin.column, 1);
        return core::make_error(errc::config_invalid,
                                fmt::format("{}:{}:{}: {}: {}", file_, line, column, path, what));
    }

    core::Unexpected fail(const Entry& e, std::string_view what) const {
        return fail(*e.at, e.path, what);
    }

    // Reads the keys of the table in `e` in document order, each with its
    // field; a key without a field is an error.
    Result<void> walk(const Entry& e, std::span<const Field> fields) const;

    Result<std::string_view> string_of(const Entry& e) const;
    Result<std::int64_t> integer_in(const Entry& e, std::int64_t lo, std::int64_t hi) const;
    Result<std::uint64_t> size_in(const Entry& e, std::uint64_t lo, std::uint64_t hi) const;
    Result<std::filesystem::path> path_of(const Entry& e, bool allow_empty) const;
    template <class T>
    Result<T> one_of(const Entry& e, Choices<T> choices) const;

    template <class T>
    Field integer(std::string_view name, T& out, std::int64_t lo, std::int64_t hi) const {
        return {
            name, [this, &out, lo, hi](const Entry& e) {
                return integer_in(e, lo, hi).map([&](std::int64_t v) { out = static_cast<T>(v); });
            }};
    }

    Field size(std::string_view name, std::uint64_t& out, std::uint64_t lo,
               std::uint64_t hi) const {
        return {name, [this, &out, lo, hi](const Entry& e) {
                    return size_in(e, lo, hi).map([&](std::uint64_t v) { out = v; });
                }};
    }

    template <class T, class Out>
    Field choice(std::string_view name, Out& out, Choices<T> choices) const {
        return {name, [this, &out, choices](const Entry& e) {
                    return one_of(e, choices).map([&](T v) { out = Out{v}; });
                }};
    }

    Result<void> read_node(const Entry& e, Config::Node& node) const;
    Result<void> read_client(const Entry& e, Config::Client& client) const;
    Result<std::string_view> token_of(const Entry& e) const;
    Result<void> read_tokens(const Entry& e, std::vector<std::string>& tokens) const;
    Result<void> read_grants(const Entry& e, std::vector<Config::Client::Grant>& grants) const;
    Result<void> read_limits(const Entry& e, Config::Limits& limits) const;
    Result<void> read_storage(const Entry& e, Config::Storage& storage) const;
    Result<void> read_log(const Entry& e, Config::Log& log) const;
    Result<void> read_metrics(const Entry& e, Config::Metrics& metrics) const;
    Result<void> check_metrics(const toml::table& root, const Config& config) const;
    Result<void> read_streams(const Entry& e, std::vector<StreamDefaults>& streams) const;
    Result<void> read_stream(const Entry& e, StreamDefaults& stream) const;
    Result<void> read_acks(const Entry& e, core::Acks& acks) const;
    Result<void> read_cluster(const Entry& e, Config::Cluster& cluster) const;
    Result<void> read_members(const Entry& e, std::vector<Config::Member>& members) const;
    Result<void> read_member(const Entry& e, Config::Member& member) const;
    Result<void> check_members(const toml::source_region& at, Config& config) const;
    Result<void> check_cluster(const toml::table& root, Config& config) const;

    std::string_view file_;
};

template <class T>
Result<T> Reader::one_of(const Entry& e, Choices<T> choices) const {
    std::string names;
    for (const auto& [name, value] : choices) {
        names += names.empty() ? "" : ", ";
        names += name;
    }
    const auto* s = e.node->as_string();
    if (s != nullptr) {
        for (const auto& [name, value] : choices) {
            if (name == s->get()) return value;
        }
        return fail(e, fmt::format("expected one of {}, got {:?}", names, s->get()));
    }
    return fail(e, fmt::format("expected one of {}, got {}", names, describe(*e.node)));
}

}  // namespace spirit::daemon::config_detail
