// The spirit CLI: commands over the client library (net/client.h).
#include "daemon/cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/hash_chain.h"
#include "core/limits.h"
#include "core/stream_name.h"
#include "daemon/bench.h"
#include "daemon/cli/ops_commands.h"
#include "daemon/cli_common.h"
#include "daemon/cli_format.h"
#include "daemon/cli_topology.h"
#include "daemon/line_reader.h"
#include "net/client.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

using cli::broken_chain;
using cli::connect;
using cli::fail;
using cli::failed;
using cli::Global;
using cli::ok;
using cli::timed_out;
using cli::unreachable;
using cli::usage;

std::string policy_text(const core::StreamPolicy& p) {
    std::string acks = p.acks.kind == core::Acks::Kind::majority ? "majority"
                       : p.acks.kind == core::Acks::Kind::all    ? "all"
                                                                 : std::to_string(p.acks.count);
    return fmt::format("{} acks={}",
                       p.redundancy == core::Redundancy::eventual ? "eventual" : "immediate", acks);
}

void print_event_json(const core::EnvelopeView& e, bool force_base64) {
    std::string payload;
    const std::string_view text = core::as_chars(e.payload);
    if (!force_base64 && core::is_valid_utf8(text)) {
        payload = "\"payload\":" + cli::json_string(text);
    } else {
        payload = "\"payload_base64\":\"" + cli::base64(e.payload) + "\"";
    }
    std::string line = fmt::format(
        "{{\"stream\":{},\"seq\":{},\"epoch\":{},\"ts\":\"{}\",\"id\":\"{}\",\"type\":{},{}",
        cli::json_string(e.stream), e.seq.value(), e.epoch.value(),
        cli::rfc3339(e.timestamp_ns.value()), core::to_hex(core::ByteView(e.id.bytes)),
        cli::json_string(e.type), payload);
    if (!e.metadata.empty()) {
        const std::string_view meta = core::as_chars(e.metadata);
        if (core::is_valid_utf8(meta) && !force_base64) {
            line += ",\"metadata\":" + cli::json_string(meta);
        } else {
            line += ",\"metadata_base64\":\"" + cli::base64(e.metadata) + "\"";
        }
    }
    line += fmt::format(",\"hash\":\"{}\"}}\n", core::digest_hex(e.hash));
    std::fwrite(line.data(), 1, line.size(), stdout);
}

// --- pub ---

struct PubArgs {
    std::string stream;
    std::optional<std::string> data;
    std::string type;
    std::string id_hex;
    std::optional<std::uint64_t> expect_seq;
    std::string metadata;
    bool verbose = false;
    bool json = false;
};

// Bounds of `spirit pub` reading stdin: publishes (one per line) and their
// bytes in flight to the daemon; lines read ahead of them wait in the
// LineReader (its queued_bytes_max), and past that the writer blocks.
constexpr std::size_t pub_lines_in_flight_max = 4096;
constexpr std::size_t pub_bytes_in_flight_max = 32u << 20;

// One publish per stdin line, as the lines arrive: lines that arrive
// together are queued together and so share Publish frames, up to the
// bounds above in flight; each ack prints in input order as soon as it and
// every one before it are in. At EOF waits for every ack. Returns the exit
// code of the first failure (every failure is reported), else ok.
int publish_lines(net::Client& client, const Global& g, const PubArgs& a, cli::AckStyle style) {
    net::Async wake(client.loop(), [] {});  // the predicate below does the work
    LineReader reader({.fd = STDIN_FILENO, .line_bytes_max = core::limits::payload_bytes_max},
                      [&wake] { wake.send(); });
    struct Slot {
        std::size_t bytes = 0;
        std::optional<core::Result<net::PublishReceipt>> result;
    };
    // Shared with the callbacks, which may outlive this function (a client
    // failing its publishes as it closes).
    struct State {
        std::deque<Slot> slots;  // in input order; stable addresses until popped
        std::uint64_t completed = 0;
    };
    auto state = std::make_shared<State>();
    std::deque<Slot>& slots = state->slots;
    const std::uint64_t& completed = state->completed;
    std::size_t bytes_in_flight = 0;
    int status = ok;
    bool first = true;
    const auto timeout = std::chrono::milliseconds(g.timeout_ms);
    auto last_progress = std::chrono::steady_clock::now();

    auto print_done = [&] {
        bool printed = false;
        while (!slots.empty() && slots.front().result) {
            const auto& r = *slots.front().result;
            if (r) {
                std::printf("%s\n", cli::ack_line(*r, style).c_str());
            } else {
                if (style == cli::AckStyle::json) {
                    std::printf("%s\n", cli::error_json(r.error()).c_str());
                }
                const int code = fail(r.error());
                if (status == ok) status = code;
            }
            bytes_in_flight -= slots.front().bytes;
            slots.pop_front();
            printed = true;
        }
        if (printed) std::fflush(stdout);
    };
    auto room = [&] {
        return slots.size() < pub_lines_in_flight_max && bytes_in_flight < pub_bytes_in_flight_max;
    };
    while (true) {
        if (room()) {
            const std::size_t lines_max = pub_lines_in_flight_max - slots.size();
            for (std::string& line : reader.take(lines_max)) {
                core::EventDraft e{std::nullopt, a.type, core::as_bytes(a.metadata),
                                   core::as_bytes(line)};
                net::PublishOptions o;
                if (first && a.expect_seq) o.expected_last_seq = core::Seq{*a.expect_seq};
                first = false;
                Slot& slot = slots.emplace_back();
                slot.bytes = line.size();
                bytes_in_flight += line.size();
                client.publish_async(a.stream, std::span(&e, 1), o,
                                     [state, &slot](core::Result<net::PublishReceipt> r) {
                                         slot.result = std::move(r);
                                         ++state->completed;
                                     });
            }
        }
        print_done();
        if (reader.done() && slots.empty()) break;
        // Wait for an ack, or for a line when there is room for one. Idle
        // input may last forever; an ack may not.
        const std::uint64_t completed_before = completed;
        const auto wait = slots.empty() ? std::chrono::milliseconds(3'600'000) : timeout;
        auto r = client.run_until(
            [&] {
                return completed != completed_before || (room() && reader.has_lines()) ||
                       (slots.empty() && reader.done());
            },
            wait);
        if (completed != completed_before) last_progress = std::chrono::steady_clock::now();
        if (!r && !r.error().is(errc::timeout)) {
            print_done();
            return fail(r.error());
        }
        if (!slots.empty() && std::chrono::steady_clock::now() - last_progress >= timeout) {
            print_done();
            return fail(core::Error{core::make_error_code(errc::timeout),
                                    fmt::format("no acknowledgement within {} ms ({} publishes "
                                                "waiting)",
                                                g.timeout_ms, slots.size())});
        }
    }
    if (auto e = reader.error()) {
        // What was read before it was published; the rest of the input was not.
        std::fprintf(stderr, "spirit: %s\n", e->message().c_str());
        if (status == ok) status = failed;
    }
    return status;
}

int pub(const Global& g, const PubArgs& a) {
    if (auto valid = core::validate_stream_name(a.stream); !valid)
        return fail(valid.error()), usage;
    if (a.verbose && a.json) {
        std::fprintf(stderr, "spirit: give --verbose or --json, not both\n");
        return usage;
    }
    const cli::AckStyle style = a.json      ? cli::AckStyle::json
                                : a.verbose ? cli::AckStyle::verbose
                                            : cli::AckStyle::brief;
    std::optional<core::EventId> id;
    if (!a.id_hex.empty()) {
        auto bytes = core::from_hex(a.id_hex);
        if (!bytes || bytes->size() != 16) {
            std::fprintf(stderr, "spirit: --id must be 32 hex digits (16 bytes)\n");
            return usage;
        }
        id.emplace();
        std::copy(bytes->begin(), bytes->end(), id->bytes.begin());
        if (!a.data) {
            std::fprintf(stderr, "spirit: --id needs DATA (stdin publishes many events)\n");
            return usage;
        }
    }
    auto client = connect(g);
    if (!client) return fail(client.error());
    if (!a.data) return publish_lines(**client, g, a, style);
    net::PublishOptions options;
    if (a.expect_seq) options.expected_last_seq = core::Seq{*a.expect_seq};
    core::EventDraft e{id, a.type, core::as_bytes(a.metadata), core::as_bytes(*a.data)};
    auto r = (*client)->publish(a.stream, std::span(&e, 1), options);
    if (!r) {
        if (style == cli::AckStyle::json) std::printf("%s\n", cli::error_json(r.error()).c_str());
        std::fflush(stdout);
        return fail(r.error());
    }
    std::printf("%s\n", cli::ack_line(*r, style).c_str());
    return ok;
}

// --- sub ---

struct SubArgs {
    std::string stream;
    std::string from = "first";
    std::string durable;
    std::uint64_t count = 0;
    std::string format = "json";
    bool base64 = false;
    std::uint64_t credit = 1024;
    std::uint32_t idle_exit_ms = 0;
};

int sub(const Global& g, const SubArgs& a) {
    net::SubscribeOptions options;
    options.target = a.stream;
    options.credit_events = a.credit;
    if (a.count > 0) options.credit_events = std::min(options.credit_events, a.count);
    if (!a.durable.empty()) options.durable = a.durable;
    if (a.from == "first") {
        options.from = proto::From::first;
    } else if (a.from == "last") {
        options.from = proto::From::last;
    } else if (a.from == "new") {
        options.from = proto::From::new_;
    } else if (!a.from.empty() && a.from[0] == '@') {
        auto ns = cli::parse_rfc3339(a.from.substr(1));
        if (!ns) {
            std::fprintf(stderr,
                         "spirit: --from %s: expected @RFC3339, e.g. @2026-11-22T10:00:00Z\n",
                         a.from.c_str());
            return usage;
        }
        options.from = proto::From::time;
        options.from_value = *ns;
    } else {
        char* end = nullptr;
        const unsigned long long seq = std::strtoull(a.from.c_str(), &end, 10);
        if (a.from.empty() || *end != '\0' || seq == 0) {
            std::fprintf(stderr,
                         "spirit: --from %s: expected first, last, new, a seq (1, 2, ...) or "
                         "@RFC3339\n",
                         a.from.c_str());
            return usage;
        }
        options.from = proto::From::seq;
        options.from_value = seq;
    }
    if (a.format != "json" && a.format != "raw") {
        std::fprintf(stderr, "spirit: --format must be json or raw\n");
        return usage;
    }
    auto client = connect(g);
    if (!client) return fail(client.error());
    std::uint64_t received = 0;
    auto subscription = (*client)->subscribe(options, [&](const core::EnvelopeView& e) {
        if (a.count > 0 && received >= a.count) return;
        ++received;
        if (a.format == "raw") {
            std::fwrite(e.payload.data(), 1, e.payload.size(), stdout);
            std::fputc('\n', stdout);
        } else {
            print_event_json(e, a.base64);
        }
        if (a.count == 0) std::fflush(stdout);
    });
    if (!subscription) return fail(subscription.error());
    net::Subscription& s = **subscription;
    if (auto code = cli::follow(**client, s, received, {a.count, a.idle_exit_ms})) return *code;
    // Let the last acks of a durable consumer reach the daemon.
    if (options.durable) (void)(*client)->unsubscribe(s);
    return ok;
}

// --- streams, stream (status and verify: daemon/cli/ops_commands.cc) ---

void print_description(const proto::StreamDescription& d) {
    std::printf("stream      %s\n", d.name.c_str());
    std::printf("policy      %s\n", policy_text(d.policy).c_str());
    std::printf("first seq   %llu\n", static_cast<unsigned long long>(d.first_seq.value()));
    std::printf("last seq    %llu\n", static_cast<unsigned long long>(d.last_seq.value()));
    std::printf("events      %llu\n", static_cast<unsigned long long>(d.event_count));
    std::printf("bytes       %llu\n", static_cast<unsigned long long>(d.event_bytes));
    std::printf("last epoch  %llu\n", static_cast<unsigned long long>(d.last_epoch.value()));
    if (d.last_seq.value() > 0) {
        std::printf("last time   %s\n", cli::rfc3339(d.last_timestamp_ns.value()).c_str());
    }
    std::printf("last hash   %s\n", core::digest_hex(d.last_hash).c_str());
    std::printf("created     %s\n", cli::rfc3339(d.created_ns.value()).c_str());
}

int streams(const Global& g) {
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto list = (*client)->streams();
    if (!list) return fail(list.error());
    std::printf("%-40s %12s %12s %14s  %s\n", "STREAM", "FIRST", "LAST", "BYTES", "POLICY");
    for (const auto& d : *list) {
        std::printf("%-40s %12llu %12llu %14llu  %s\n", d.name.c_str(),
                    static_cast<unsigned long long>(d.first_seq.value()),
                    static_cast<unsigned long long>(d.last_seq.value()),
                    static_cast<unsigned long long>(d.event_bytes), policy_text(d.policy).c_str());
    }
    return ok;
}

struct CreateArgs {
    std::string redundancy = "eventual";
    std::string acks = "majority";
    std::uint64_t retention_events = 0;
    std::uint64_t retention_bytes = 0;
    std::uint64_t retention_age_ms = 0;
};

int stream_create(const Global& g, const std::string& name, const CreateArgs& a) {
    core::StreamPolicy policy;
    if (a.redundancy == "eventual") {
        policy.redundancy = core::Redundancy::eventual;
    } else if (a.redundancy == "immediate") {
        policy.redundancy = core::Redundancy::immediate;
    } else {
        std::fprintf(stderr, "spirit: --redundancy must be eventual or immediate\n");
        return usage;
    }
    if (a.acks == "majority") {
        policy.acks.kind = core::Acks::Kind::majority;
    } else if (a.acks == "all") {
        policy.acks.kind = core::Acks::Kind::all;
    } else {
        char* end = nullptr;
        const unsigned long n = std::strtoul(a.acks.c_str(), &end, 10);
        if (a.acks.empty() || *end != '\0' || n < 1 || n > 255) {
            std::fprintf(stderr, "spirit: --acks must be majority, all or 1..255\n");
            return usage;
        }
        policy.acks = {core::Acks::Kind::count, static_cast<std::uint8_t>(n)};
    }
    policy.retention = {a.retention_events, a.retention_bytes, a.retention_age_ms};
    auto client = connect(g);
    if (!client) return fail(client.error());
    if (auto r = (*client)->create_stream(name, policy); !r) return fail(r.error());
    std::printf("created %s\n", name.c_str());
    return ok;
}

// The retention limits `spirit stream alter` was given (unset: unchanged).
struct AlterArgs {
    std::optional<std::uint64_t> retention_events;
    std::optional<std::uint64_t> retention_bytes;
    std::optional<std::uint64_t> retention_age_ms;
};

int stream_alter(const Global& g, const std::string& name, const AlterArgs& a) {
    if (!a.retention_events && !a.retention_bytes && !a.retention_age_ms) {
        std::fprintf(stderr,
                     "spirit: stream alter needs --retention-events, --retention-bytes or "
                     "--retention-age-ms\n");
        return usage;
    }
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto d = (*client)->stream_info(name);
    if (!d) return fail(d.error());
    core::StreamPolicy policy = d->policy;
    policy.retention.events_max = a.retention_events.value_or(policy.retention.events_max);
    policy.retention.bytes_max = a.retention_bytes.value_or(policy.retention.bytes_max);
    policy.retention.age_ms_max = a.retention_age_ms.value_or(policy.retention.age_ms_max);
    if (auto r = (*client)->alter_stream(name, policy); !r) return fail(r.error());
    std::printf("altered %s: retention %llu events, %llu bytes, %llu ms (0: no limit)\n",
                name.c_str(), static_cast<unsigned long long>(policy.retention.events_max),
                static_cast<unsigned long long>(policy.retention.bytes_max),
                static_cast<unsigned long long>(policy.retention.age_ms_max));
    return ok;
}

// --- quarantine, cluster ---

int quarantine_ls(const Global& g, const std::string& stream, bool json) {
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto list = (*client)->quarantine_list(stream);
    if (!list) return fail(list.error());
    if (json) {
        for (const proto::QuarantineStream& q : list->streams) {
            std::printf("%s\n", cli::quarantine_json(q).c_str());
        }
        return ok;
    }
    if (list->streams.empty()) {
        std::printf("no quarantined events\n");
        return ok;
    }
    std::printf("%s\n", cli::quarantine_header().c_str());
    for (const proto::QuarantineStream& q : list->streams) {
        std::printf("%s\n", cli::quarantine_row(q).c_str());
    }
    return ok;
}

struct ShowArgs {
    std::string stream;
    std::uint64_t from = 1;
    std::uint64_t limit = 0;
    bool json = false;
};

// Pages through the quarantine from --from, printing each event as it comes.
int quarantine_show(const Global& g, const ShowArgs& a) {
    if (a.from == 0) {
        std::fprintf(stderr, "spirit: --from must be a seq (1, 2, ...)\n");
        return usage;
    }
    auto client = connect(g);
    if (!client) return fail(client.error());
    std::uint64_t shown = 0;
    std::optional<proto::QuarantinePosition> after;
    do {
        const std::size_t page_max =
            a.limit == 0 ? 0
                         : static_cast<std::size_t>(std::min<std::uint64_t>(a.limit - shown, 1000));
        auto page = after ? (*client)->quarantine_read(a.stream, *after, page_max)
                          : (*client)->quarantine_read(a.stream, core::Seq{a.from - 1}, page_max);
        if (!page) return fail(page.error());
        for (const core::Envelope& e : page->entries) {
            if (shown == 0 && !a.json) std::printf("%s\n", cli::quarantined_event_header().c_str());
            if (a.json) {
                print_event_json(e.view(), false);
            } else {
                std::printf("%s\n", cli::quarantined_event_row(e).c_str());
            }
            ++shown;
        }
        after = page->next;
    } while (after && (a.limit == 0 || shown < a.limit));
    if (shown == 0 && !a.json) std::printf("no quarantined events\n");
    return ok;
}

struct RepublishArgs {
    std::string stream;
    std::vector<std::string> entries;  // SEQ or SEQ:EPOCH
    bool verbose = false;
    bool json = false;
};

// "17" or "17:3" (seq 17 of epoch 3); nullopt if it is neither.
std::optional<net::QuarantineRef> parse_quarantine_ref(std::string_view text) {
    auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
        if (digits.empty() || digits.size() > 19) return std::nullopt;
        std::uint64_t n = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (n == 0) return std::nullopt;
        return n;
    };
    const std::size_t colon = text.find(':');
    auto seq = number(text.substr(0, colon));
    if (!seq) return std::nullopt;
    if (colon == std::string_view::npos) return net::QuarantineRef{core::Seq{*seq}, std::nullopt};
    auto epoch = number(text.substr(colon + 1));
    if (!epoch) return std::nullopt;
    return net::QuarantineRef{core::Seq{*seq}, core::Epoch{*epoch}};
}

int quarantine_republish(const Global& g, const RepublishArgs& a) {
    if (a.verbose && a.json) {
        std::fprintf(stderr, "spirit: give --verbose or --json, not both\n");
        return usage;
    }
    std::vector<net::QuarantineRef> refs;
    for (const std::string& text : a.entries) {
        auto ref = parse_quarantine_ref(text);
        if (!ref) {
            std::fprintf(stderr, "spirit: %s: expected SEQ or SEQ:EPOCH (numbers from 1)\n",
                         text.c_str());
            return usage;
        }
        refs.push_back(*ref);
    }
    const cli::AckStyle style = a.json      ? cli::AckStyle::json
                                : a.verbose ? cli::AckStyle::verbose
                                            : cli::AckStyle::brief;
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto r = (*client)->quarantine_republish(a.stream, std::move(refs));
    if (!r) {
        if (style == cli::AckStyle::json) std::printf("%s\n", cli::error_json(r.error()).c_str());
        std::fflush(stdout);
        return fail(r.error());
    }
    std::printf("%s\n", cli::ack_line(*r, style).c_str());
    return ok;
}

int set_master(const Global& g, const std::string& node, bool force) {
    auto client = connect(g);
    if (!client) return fail(client.error());
    if (auto r = (*client)->set_master(node, force); !r) return fail(r.error());
    std::printf("%s was asked to stand for election at once (spirit status shows the move)\n",
                node.c_str());
    return ok;
}

// The `quarantine` and `cluster` commands: their arguments, and which ran.
struct AdminCommands {
    std::string ls_stream;
    bool ls_json = false;
    ShowArgs show;
    RepublishArgs republish;
    std::string master_node;
    bool master_force = false;
    CLI::App* ls_cmd = nullptr;
    CLI::App* show_cmd = nullptr;
    CLI::App* republish_cmd = nullptr;
    CLI::App* set_master_cmd = nullptr;
};

// REQUIRES: `c` outlives the parse of `app` (CLI11 writes into it).
void add_admin_commands(CLI::App& app, AdminCommands& c) {
    auto* quarantine =
        app.add_subcommand("quarantine", "inspect and republish events removed from streams");
    quarantine->require_subcommand(1);
    c.ls_cmd = quarantine->add_subcommand("ls", "list the streams with quarantined events");
    c.ls_cmd->add_option("stream", c.ls_stream, "stream name (default: every stream)");
    c.ls_cmd->add_flag("--json", c.ls_json, "one JSON object per stream");
    c.show_cmd = quarantine->add_subcommand("show", "print a stream's quarantined events");
    c.show_cmd->add_option("stream", c.show.stream, "stream name")->required();
    c.show_cmd->add_option("--from", c.show.from, "the first seq to show")->capture_default_str();
    c.show_cmd->add_option("--limit", c.show.limit, "show at most N events (0: all)");
    c.show_cmd->add_flag("--json", c.show.json, "one JSON object per event, as spirit sub prints");
    c.republish_cmd = quarantine->add_subcommand(
        "republish", "publish quarantined events again as new events of their stream");
    c.republish_cmd->add_option("stream", c.republish.stream, "stream name")->required();
    c.republish_cmd
        ->add_option("entries", c.republish.entries,
                     "SEQ, or SEQ:EPOCH when the seq is quarantined in several epochs")
        ->required();
    c.republish_cmd->add_flag("--verbose,-v", c.republish.verbose,
                              "print the ack's kind, seq range, epoch and holders");
    c.republish_cmd->add_flag("--json", c.republish.json, "print the ack (or error) as JSON");

    auto* cluster = app.add_subcommand("cluster", "act on the cluster");
    cluster->require_subcommand(1);
    c.set_master_cmd = cluster->add_subcommand(
        "set-master", "move the master to a data node (it stands for election at once)");
    c.set_master_cmd->add_option("node", c.master_node, "node id")->required();
    c.set_master_cmd->add_flag(
        "--force", c.master_force,
        "also a node whose data dir is new (send it to that node: it then completes every stream "
        "from the others)");
}

// The exit code of the admin command that was parsed; nullopt if none was.
std::optional<int> run_admin_command(const Global& g, const AdminCommands& c) {
    if (c.ls_cmd->parsed()) return quarantine_ls(g, c.ls_stream, c.ls_json);
    if (c.show_cmd->parsed()) return quarantine_show(g, c.show);
    if (c.republish_cmd->parsed()) return quarantine_republish(g, c.republish);
    if (c.set_master_cmd->parsed()) return set_master(g, c.master_node, c.master_force);
    return std::nullopt;
}

}  // namespace

namespace {

CLI::App* add_pub_command(CLI::App& app, PubArgs& pa) {
    auto* cmd = app.add_subcommand("pub", "publish DATA, or each line of stdin, as events");
    cmd->add_option("stream", pa.stream, "stream name")->required();
    cmd->add_option("data", pa.data, "event payload (default: one event per stdin line)");
    cmd->add_option("--type", pa.type, "event type");
    cmd->add_option("--id", pa.id_hex, "event id: 32 hex digits (idempotent publish)");
    cmd->add_option("--expect-seq", pa.expect_seq,
                    "fail unless the stream's last seq is this (0: empty)");
    cmd->add_option("--metadata", pa.metadata, "event metadata");
    cmd->add_flag("--verbose,-v", pa.verbose,
                  "print each ack's kind, seq range, epoch and holders");
    cmd->add_flag("--json", pa.json,
                  "print each ack (or error) as one JSON object per line, fields as in "
                  "PublishAck");
    return cmd;
}

CLI::App* add_sub_command(CLI::App& app, SubArgs& sa) {
    auto* cmd = app.add_subcommand("sub", "print a stream's events as JSON lines");
    cmd->add_option("stream", sa.stream, "stream name or pattern (orders.*, orders.>)")->required();
    cmd->add_option("--from", sa.from, "first | last | new | SEQ | @RFC3339")
        ->capture_default_str();
    cmd->add_option("--durable", sa.durable, "durable consumer name: resume after the last ack");
    cmd->add_option("--count", sa.count, "exit after N events");
    cmd->add_option("--format", sa.format, "json | raw (payload only)")->capture_default_str();
    cmd->add_flag("--base64", sa.base64, "always print payloads as base64");
    cmd->add_option("--credit", sa.credit, "events in flight from the daemon")
        ->capture_default_str();
    cmd->add_option("--idle-exit-ms", sa.idle_exit_ms,
                    "exit after this long without an event (0: never)");
    return cmd;
}

// `spirit stream info|create|alter|delete`.
struct StreamCommands {
    std::string name;
    CreateArgs create;
    AlterArgs alter;
    CLI::App* info_cmd = nullptr;
    CLI::App* create_cmd = nullptr;
    CLI::App* alter_cmd = nullptr;
    CLI::App* delete_cmd = nullptr;
};

void add_stream_commands(CLI::App& app, StreamCommands& sc) {
    auto* stream_cmd =
        app.add_subcommand("stream", "inspect, create, alter (retention) or delete a stream");
    stream_cmd->require_subcommand(1);
    sc.info_cmd = stream_cmd->add_subcommand("info", "show a stream");
    sc.info_cmd->add_option("name", sc.name)->required();
    CreateArgs& ca = sc.create;
    sc.create_cmd = stream_cmd->add_subcommand("create", "create an empty stream");
    sc.create_cmd->add_option("name", sc.name)->required();
    sc.create_cmd->add_option("--redundancy", ca.redundancy, "eventual | immediate")
        ->capture_default_str();
    sc.create_cmd->add_option("--acks", ca.acks, "majority | all | N (immediate streams)")
        ->capture_default_str();
    sc.create_cmd->add_option("--retention-events", ca.retention_events,
                              "keep at most N events (0: all)");
    sc.create_cmd->add_option("--retention-bytes", ca.retention_bytes,
                              "keep at most N bytes (0: all)");
    sc.create_cmd->add_option("--retention-age-ms", ca.retention_age_ms,
                              "keep events this young (0: all)");
    sc.alter_cmd = stream_cmd->add_subcommand("alter", "change a stream's retention");
    sc.alter_cmd->add_option("name", sc.name)->required();
    sc.alter_cmd->add_option("--retention-events", sc.alter.retention_events,
                             "keep at most N events (0: all)");
    sc.alter_cmd->add_option("--retention-bytes", sc.alter.retention_bytes,
                             "keep at most N bytes (0: all)");
    sc.alter_cmd->add_option("--retention-age-ms", sc.alter.retention_age_ms,
                             "keep events this young (0: all)");
    sc.delete_cmd = stream_cmd->add_subcommand("delete", "delete a stream and its events");
    sc.delete_cmd->add_option("name", sc.name)->required();
}

std::optional<int> run_stream_command(const Global& g, const StreamCommands& sc) {
    if (sc.info_cmd->parsed()) {
        auto client = connect(g);
        if (!client) return fail(client.error());
        auto d = (*client)->stream_info(sc.name);
        if (!d) return fail(d.error());
        print_description(*d);
        return ok;
    }
    if (sc.create_cmd->parsed()) return stream_create(g, sc.name, sc.create);
    if (sc.alter_cmd->parsed()) return stream_alter(g, sc.name, sc.alter);
    if (sc.delete_cmd->parsed()) {
        auto client = connect(g);
        if (!client) return fail(client.error());
        if (auto r = (*client)->delete_stream(sc.name); !r) return fail(r.error());
        std::printf("deleted %s\n", sc.name.c_str());
        return ok;
    }
    return std::nullopt;
}

// Names an unknown command instead of CLI11's "a subcommand is required".
bool known_command(CLI::App& app, int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--server" || arg == "--socket" || arg == "--token" || arg == "--timeout-ms") {
            ++i;
            continue;
        }
        if (arg.starts_with("-")) continue;
        const auto commands = app.get_subcommands([](CLI::App*) { return true; });
        const bool known = std::any_of(commands.begin(), commands.end(),
                                       [&](CLI::App* c) { return c->check_name(arg); });
        if (!known) {
            std::fprintf(stderr, "spirit: unknown command \"%s\"; see spirit --help\n",
                         arg.c_str());
        }
        return known;
    }
    return true;
}

void add_global_options(CLI::App& app, Global& g) {
    app.add_option("--server", g.server,
                   "daemon address host:port (default: $SPIRIT_SERVER, else 127.0.0.1:7700)");
    app.add_option("--socket", g.socket, "daemon Unix socket path (instead of --server)");
    app.add_option("--token", g.token, "client token, if the daemon requires one");
    app.add_option("--timeout-ms", g.timeout_ms, "request timeout in milliseconds")
        ->capture_default_str();
}

// The global options after parsing: a usage error, or nullopt.
std::optional<int> check_global_options(const Global& g) {
    if (!g.server.empty()) {
        if (auto endpoint = net::parse_endpoint(g.server); !endpoint) {
            std::fprintf(stderr, "spirit: --server %s\n", endpoint.error().detail.c_str());
            return usage;
        }
    }
    if (!g.server.empty() && !g.socket.empty()) {
        std::fprintf(stderr, "spirit: give --server or --socket, not both\n");
        return usage;
    }
    return std::nullopt;
}

}  // namespace

int run_cli(int argc, char** argv) {
    if (!core::init_crypto()) {
        std::fprintf(stderr, "spirit: libsodium failed to initialise\n");
        return 1;
    }
    CLI::App app{"spirit: publish to, subscribe to and manage spiritd streams"};
    app.require_subcommand(1);
    Global g;
    add_global_options(app, g);
    PubArgs pa;
    auto* pub_cmd = add_pub_command(app, pa);
    SubArgs sa;
    auto* sub_cmd = add_sub_command(app, sa);
    app.add_subcommand("streams", "list streams");
    StreamCommands sc;
    add_stream_commands(app, sc);
    cli::OpsCommands ops;
    cli::add_ops_commands(app, ops);
    AdminCommands admin;
    add_admin_commands(app, admin);
    cli::TopologyCommands topology;
    cli::add_topology_commands(app, topology);
    BenchArgs ba;
    auto* bench_cmd =
        app.add_subcommand("bench", "measure publish and delivery throughput and latency");
    add_bench_options(*bench_cmd, ba);

    if (!known_command(app, argc, argv)) return usage;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ok : usage;
    }
    if (auto code = check_global_options(g)) return *code;
    if (pub_cmd->parsed()) return pub(g, pa);
    if (sub_cmd->parsed()) return sub(g, sa);
    if (app.got_subcommand("streams")) return streams(g);
    if (auto code = cli::run_ops_command([&g] { return connect(g); }, fail, ops)) return *code;
    if (bench_cmd->parsed()) {
        return run_bench(g.server.empty() && g.socket.empty()
                             ? std::string()
                             : (g.socket.empty() ? g.server : "unix:" + g.socket),
                         g.token, ba);
    }
    if (auto code = run_stream_command(g, sc)) return *code;
    if (auto code = run_admin_command(g, admin)) return *code;
    if (auto code = cli::run_topology_command(g, topology)) return *code;
    return usage;
}

}  // namespace spirit::daemon
