// The spirit CLI: commands over the client library (net/client.h).
#include "daemon/cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/hash_chain.h"
#include "core/stream_name.h"
#include "daemon/bench.h"
#include "daemon/cli_format.h"
#include "net/client.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

enum Exit : int { ok = 0, failed = 1, usage = 2, broken_chain = 3, unreachable = 4, timed_out = 5 };

int exit_for(const core::Error& e) {
    if (e.is(errc::connection_lost)) return unreachable;
    if (e.is(errc::timeout)) return timed_out;
    if (e.code.category() != core::spirit_category()) return unreachable;  // socket errors
    return failed;
}

int fail(const core::Error& e) {
    std::fprintf(stderr, "spirit: %s\n", e.message().c_str());
    return exit_for(e);
}

struct Global {
    std::string server;
    std::string socket;
    std::string token;
    std::uint32_t timeout_ms = 30'000;
};

core::Result<std::unique_ptr<net::Client>> connect(const Global& g) {
    net::ClientOptions options;
    options.client_name = "spirit-cli";
    options.request_timeout_ms = g.timeout_ms;
    options.reconnect = false;
    if (!g.token.empty()) options.token = g.token;
    if (!g.socket.empty()) {
        options.endpoint = net::UnixEndpoint{g.socket};
    } else {
        std::string server = g.server;
        if (server.empty()) {
            const char* env = std::getenv("SPIRIT_SERVER");
            server = env != nullptr && env[0] != '\0' ? env : "127.0.0.1:7700";
        }
        auto endpoint = net::parse_endpoint(server);
        if (!endpoint) return core::Unexpected{endpoint.error()};
        options.endpoint = *endpoint;
    }
    return net::Client::connect(options);
}

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
};

int pub(const Global& g, const PubArgs& a) {
    if (auto valid = core::validate_stream_name(a.stream); !valid)
        return fail(valid.error()), usage;
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
    auto print = [](const net::PublishReceipt& r) {
        if (!r.duplicates.empty() && r.first_seq.value() == 0) {
            std::printf("%llu duplicate\n",
                        static_cast<unsigned long long>(r.duplicates[0].seq.value()));
        } else {
            std::printf("%llu\n", static_cast<unsigned long long>(r.first_seq.value()));
        }
    };
    net::PublishOptions options;
    if (a.expect_seq) options.expected_last_seq = core::Seq{*a.expect_seq};
    if (a.data) {
        core::EventDraft e{id, a.type, core::as_bytes(a.metadata), core::as_bytes(*a.data)};
        auto r = (*client)->publish(a.stream, std::span(&e, 1), options);
        if (!r) return fail(r.error());
        print(*r);
        return ok;
    }
    // Each stdin line is one event, published pipelined; seqs print in order.
    std::string line;
    std::deque<std::optional<core::Result<net::PublishReceipt>>> receipts;
    int status = ok;
    auto drain = [&](bool all) {
        while (!receipts.empty() && receipts.front().has_value()) {
            auto& r = *receipts.front();
            if (r) {
                print(*r);
            } else if (status == ok) {
                status = fail(r.error());
            }
            receipts.pop_front();
        }
        (void)all;
    };
    bool first = true;
    while (std::getline(std::cin, line)) {
        core::EventDraft e{std::nullopt, a.type, core::as_bytes(a.metadata), core::as_bytes(line)};
        net::PublishOptions o;
        if (first && a.expect_seq) o.expected_last_seq = core::Seq{*a.expect_seq};
        first = false;
        receipts.emplace_back();
        auto* slot = &receipts.back();
        (*client)->publish_async(
            a.stream, std::span(&e, 1), o,
            [slot](core::Result<net::PublishReceipt> r) { *slot = std::move(r); });
        if ((*client)->publishes_in_flight() >= 4096) {
            if (auto r =
                    (*client)->run_until([&] { return (*client)->publishes_in_flight() < 1024; },
                                         std::chrono::milliseconds(g.timeout_ms));
                !r) {
                return fail(r.error());
            }
            drain(false);
        }
    }
    if (auto r = (*client)->flush(std::chrono::milliseconds(g.timeout_ms)); !r)
        return fail(r.error());
    drain(true);
    return status;
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
    auto last_progress = std::chrono::steady_clock::now();
    std::uint64_t seen = 0;
    while (a.count == 0 || received < a.count) {
        auto r = (*client)->run_for(std::chrono::milliseconds(100));
        if (!r) return fail(r.error());
        if (s.ended()) {
            std::fflush(stdout);
            if (s.ended()->code) return fail(*s.ended());
            return ok;
        }
        if (received != seen) {
            seen = received;
            last_progress = std::chrono::steady_clock::now();
        } else if (a.idle_exit_ms > 0 && std::chrono::steady_clock::now() - last_progress >
                                             std::chrono::milliseconds(a.idle_exit_ms)) {
            break;
        }
    }
    std::fflush(stdout);
    // Let the last acks of a durable consumer reach the daemon.
    if (options.durable) (void)(*client)->unsubscribe(s);
    return ok;
}

// --- streams, stream, status, verify ---

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

int status(const Global& g) {
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto s = (*client)->status();
    if (!s) return fail(s.error());
    std::printf("node            %s\n", s->node_id.c_str());
    std::printf("server          %s\n", s->server.c_str());
    std::printf("uptime          %.1f s\n", static_cast<double>(s->uptime_ms) / 1000.0);
    std::printf("connections     %llu\n", static_cast<unsigned long long>(s->connections));
    std::printf("subscriptions   %llu\n", static_cast<unsigned long long>(s->subscriptions));
    std::printf("streams         %llu\n", static_cast<unsigned long long>(s->streams));
    std::printf("commits         %llu\n", static_cast<unsigned long long>(s->commits));
    std::printf("fsyncs          %llu\n", static_cast<unsigned long long>(s->syncs));
    std::printf("events written  %llu\n", static_cast<unsigned long long>(s->events_written));
    std::printf("failed commits  %llu\n", static_cast<unsigned long long>(s->failed_commits));
    std::printf("storage         %s\n", s->storage_error.empty() ? "ok" : s->storage_error.c_str());
    std::printf("role            %s (master %s)\n", s->role.c_str(), s->master.c_str());
    for (const proto::PeerStatus& p : s->peers) {
        std::printf("peer            %s %s, %llu events behind (%s)\n", p.node_id.c_str(),
                    p.connected ? "connected" : "not connected",
                    static_cast<unsigned long long>(p.lag_events), p.detail.c_str());
    }
    for (const proto::ReplicationError& e : s->replication_errors) {
        std::printf("replication     %s: %s\n", e.stream.c_str(), e.message.c_str());
    }
    if (s->role == "slave") {
        std::printf("outbox          %llu events\n",
                    static_cast<unsigned long long>(s->outbox_events));
    }
    return ok;
}

int verify(const Global& g, const std::string& stream) {
    auto client = connect(g);
    if (!client) return fail(client.error());
    std::vector<std::string> names;
    if (!stream.empty()) {
        names.push_back(stream);
    } else {
        auto list = (*client)->streams();
        if (!list) return fail(list.error());
        for (const auto& d : *list) names.push_back(d.name);
    }
    int result = ok;
    for (const std::string& name : names) {
        auto r = (*client)->verify(name);
        if (!r) return fail(r.error());
        if (r->break_seq) {
            std::printf("%s: BROKEN at seq %llu: %s\n", name.c_str(),
                        static_cast<unsigned long long>(r->break_seq->value()), r->problem.c_str());
            result = broken_chain;
        } else {
            std::printf("%s: ok, %llu events (seq %llu..%llu)\n", name.c_str(),
                        static_cast<unsigned long long>(r->events_checked),
                        static_cast<unsigned long long>(r->first_seq.value()),
                        static_cast<unsigned long long>(r->last_seq.value()));
        }
    }
    return result;
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
    app.add_option("--server", g.server,
                   "daemon address host:port (default: $SPIRIT_SERVER, else 127.0.0.1:7700)");
    app.add_option("--socket", g.socket, "daemon Unix socket path (instead of --server)");
    app.add_option("--token", g.token, "client token, if the daemon requires one");
    app.add_option("--timeout-ms", g.timeout_ms, "request timeout in milliseconds")
        ->capture_default_str();

    PubArgs pa;
    auto* pub_cmd = app.add_subcommand("pub", "publish DATA, or each line of stdin, as events");
    pub_cmd->add_option("stream", pa.stream, "stream name")->required();
    pub_cmd->add_option("data", pa.data, "event payload (default: one event per stdin line)");
    pub_cmd->add_option("--type", pa.type, "event type");
    pub_cmd->add_option("--id", pa.id_hex, "event id: 32 hex digits (idempotent publish)");
    pub_cmd->add_option("--expect-seq", pa.expect_seq,
                        "fail unless the stream's last seq is this (0: empty)");
    pub_cmd->add_option("--metadata", pa.metadata, "event metadata");

    SubArgs sa;
    auto* sub_cmd = app.add_subcommand("sub", "print a stream's events as JSON lines");
    sub_cmd->add_option("stream", sa.stream, "stream name or pattern (orders.*, orders.>)")
        ->required();
    sub_cmd->add_option("--from", sa.from, "first | last | new | SEQ | @RFC3339")
        ->capture_default_str();
    sub_cmd->add_option("--durable", sa.durable,
                        "durable consumer name: resume after the last ack");
    sub_cmd->add_option("--count", sa.count, "exit after N events");
    sub_cmd->add_option("--format", sa.format, "json | raw (payload only)")->capture_default_str();
    sub_cmd->add_flag("--base64", sa.base64, "always print payloads as base64");
    sub_cmd->add_option("--credit", sa.credit, "events in flight from the daemon")
        ->capture_default_str();
    sub_cmd->add_option("--idle-exit-ms", sa.idle_exit_ms,
                        "exit after this long without an event (0: never)");

    app.add_subcommand("streams", "list streams");
    auto* stream_cmd = app.add_subcommand("stream", "inspect, create or delete a stream");
    stream_cmd->require_subcommand(1);
    std::string stream_name;
    auto* info_cmd = stream_cmd->add_subcommand("info", "show a stream");
    info_cmd->add_option("name", stream_name)->required();
    CreateArgs ca;
    auto* create_cmd = stream_cmd->add_subcommand("create", "create an empty stream");
    create_cmd->add_option("name", stream_name)->required();
    create_cmd->add_option("--redundancy", ca.redundancy, "eventual | immediate")
        ->capture_default_str();
    create_cmd->add_option("--acks", ca.acks, "majority | all | N (immediate streams)")
        ->capture_default_str();
    create_cmd->add_option("--retention-events", ca.retention_events,
                           "keep at most N events (0: all)");
    create_cmd->add_option("--retention-bytes", ca.retention_bytes,
                           "keep at most N bytes (0: all)");
    create_cmd->add_option("--retention-age-ms", ca.retention_age_ms,
                           "keep events this young (0: all)");
    auto* delete_cmd = stream_cmd->add_subcommand("delete", "delete a stream and its events");
    delete_cmd->add_option("name", stream_name)->required();
    app.add_subcommand("status", "show the daemon's status");
    std::string verify_stream;
    auto* verify_cmd = app.add_subcommand("verify", "check every hash link of a stream (or all)");
    verify_cmd->add_option("stream", verify_stream, "stream name (default: every stream)");
    BenchArgs ba;
    auto* bench_cmd =
        app.add_subcommand("bench", "measure publish and delivery throughput and latency");
    add_bench_options(*bench_cmd, ba);

    // Name an unknown command instead of CLI11's "a subcommand is required".
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
            return usage;
        }
        break;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? ok : usage;
    }
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
    if (pub_cmd->parsed()) return pub(g, pa);
    if (sub_cmd->parsed()) return sub(g, sa);
    if (app.got_subcommand("streams")) return streams(g);
    if (app.got_subcommand("status")) return status(g);
    if (verify_cmd->parsed()) return verify(g, verify_stream);
    if (bench_cmd->parsed())
        return run_bench(g.server.empty() && g.socket.empty()
                             ? std::string()
                             : (g.socket.empty() ? g.server : "unix:" + g.socket),
                         g.token, ba);
    if (info_cmd->parsed()) {
        auto client = connect(g);
        if (!client) return fail(client.error());
        auto d = (*client)->stream_info(stream_name);
        if (!d) return fail(d.error());
        print_description(*d);
        return ok;
    }
    if (create_cmd->parsed()) return stream_create(g, stream_name, ca);
    if (delete_cmd->parsed()) {
        auto client = connect(g);
        if (!client) return fail(client.error());
        if (auto r = (*client)->delete_stream(stream_name); !r) return fail(r.error());
        std::printf("deleted %s\n", stream_name.c_str());
        return ok;
    }
    return usage;
}

}  // namespace spirit::daemon
