// Administrative requests of client sessions, one handler each: status,
// the stream list and info, stream create, delete and verify, naming the
// master, and the quarantine (list, read, republish).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "core/stream_name.h"
#include "daemon/log.h"
#include "daemon/server.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// A stream list page holds at most this many streams, a quarantine page at
// most this many events and (but for its first event) bytes of envelopes:
// replies far below any frame limit, however much there is.
constexpr std::size_t stream_page_max = 1000;
constexpr std::size_t quarantine_page_events_max = 1000;
constexpr std::size_t quarantine_page_bytes_max = std::size_t{1} << 20;
// A QuarantineListReply larger than this is refused (it names every
// stream with quarantined events; a name in the request lists one).
constexpr std::size_t quarantine_list_bytes_max = std::size_t{4} << 20;

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

proto::StreamDescription describe_stream(const storage::StreamInfo& i) {
    return proto::StreamDescription{i.name,        i.policy,      i.first_seq,  i.last_seq,
                                    i.event_count, i.event_bytes, i.last_epoch, i.last_timestamp_ns,
                                    i.last_hash,   i.created_ns};
}

// An immediate stream's acks count must be a majority of the replicas or
// more, and no more than there are: what the config requires of [[streams]].
core::Result<void> check_acks(const Config& config, const proto::StreamCreate& create) {
    const core::StreamPolicy& p = create.policy;
    if (p.redundancy != core::Redundancy::immediate || p.acks.kind != core::Acks::Kind::count) {
        return {};
    }
    const std::size_t majority = config.copies_required({core::Acks::Kind::majority, 0});
    if (p.acks.count >= majority && p.acks.count <= config.replicas()) return {};
    return core::make_error(
        errc::invalid_argument,
        fmt::format("stream {}: acks {} for an immediate stream; with {} "
                    "replicas it must be from {} (a majority) to {}",
                    create.stream, p.acks.count, config.replicas(), majority, config.replicas()));
}

// The place in a quarantine after every entry at (seq, epoch) and before
// every later one: (seq, epoch, the highest hash). No envelope has that hash
// prefix at the highest epoch, so nothing sits at the position itself.
storage::QuarantinePosition just_after(core::Seq seq, core::Epoch epoch) {
    storage::QuarantinePosition p{seq, epoch, {}};
    p.hash.bytes.fill(std::byte{0xff});
    return p;
}

constexpr core::Epoch epoch_max{std::numeric_limits<std::uint64_t>::max()};

// Where a QuarantineRead starts reading.
std::optional<storage::QuarantinePosition> read_after(const proto::QuarantineRead& read) {
    if (read.after_hash) {
        return storage::QuarantinePosition{read.after_seq, read.after_epoch, *read.after_hash};
    }
    if (read.after_seq.value() == 0) return std::nullopt;
    return just_after(read.after_seq, epoch_max);
}

// The quarantined envelope of `stream` at (entry.seq, entry.epoch).
core::Result<storage::QuarantinedEvent> find_quarantined(const storage::Store& store,
                                                         std::string_view stream,
                                                         proto::QuarantineEntry entry) {
    auto missing = [&] {
        return error(errc::not_found,
                     fmt::format("stream {}: no quarantined event at seq {} epoch {}", stream,
                                 entry.seq.value(), entry.epoch.value()));
    };
    if (entry.seq.value() == 0 || entry.epoch.value() == 0) return core::Unexpected{missing()};
    // Two entries from (seq, epoch) on: a second with both the same is ambiguous.
    storage::QuarantineReadOptions options;
    options.after = just_after(entry.seq, core::Epoch{entry.epoch.value() - 1});
    options.events_max = 2;
    auto page = store.quarantine_read(stream, options);
    if (!page) return core::Unexpected{page.error()};
    std::vector<storage::QuarantinedEvent> found;
    for (storage::QuarantinedEvent& e : page->events) {
        if (e.seq == entry.seq && e.epoch == entry.epoch) found.push_back(std::move(e));
    }
    if (found.empty()) return core::Unexpected{missing()};
    if (found.size() > 1) {
        return core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: two quarantined events at seq {} epoch {} (hashes {} and {}); "
                        "republish cannot tell them apart",
                        stream, entry.seq.value(), entry.epoch.value(),
                        core::digest_hex(found[0].envelope.hash),
                        core::digest_hex(found[1].envelope.hash)));
    }
    return std::move(found.front());
}

// About the bytes a QuarantineListReply's entry for `s` takes.
std::size_t listed_bytes(const storage::QuarantineSummary& s) {
    return 48 + s.stream.size() + 20 * s.epochs.size();
}

proto::QuarantineStream listed(const storage::QuarantineSummary& s) {
    proto::QuarantineStream q{s.stream, s.count, s.seq_min, s.seq_max, {}};
    for (const storage::QuarantineEpochCount& e : s.epochs) {
        q.epochs.push_back(proto::QuarantineEpochCount{e.epoch, e.count});
    }
    return q;
}

}  // namespace

std::function<void(core::Result<void>)> Server::done_reply(const Session& session,
                                                           std::uint64_t request_id) {
    return [this, connection_id = session.connection->id(), request_id](core::Result<void> r) {
        Session* s = session_of(connection_id);
        if (s == nullptr) return;
        if (r) {
            send(*s, proto::Done{request_id});
        } else {
            reply_error(*s, request_id, r.error());
        }
    };
}

bool Server::may_on_quarantine(const Session& session, Right right, std::string_view stream) const {
    return may(session, right, stream) || may(session, Right::admin, {});
}

void Server::handle_admin(Session& session, proto::Message&& message) {
    std::visit(
        [&](auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, proto::Status>) {
                handle_status(session, m);
            } else if constexpr (std::is_same_v<T, proto::StreamList>) {
                handle_stream_list(session, m);
            } else if constexpr (std::is_same_v<T, proto::StreamInfo>) {
                handle_stream_info(session, m);
            } else if constexpr (std::is_same_v<T, proto::StreamCreate>) {
                handle_stream_create(session, m);
            } else if constexpr (std::is_same_v<T, proto::StreamDelete>) {
                handle_stream_delete(session, m);
            } else if constexpr (std::is_same_v<T, proto::StreamAlter>) {
                handle_stream_alter(session, m);
            } else if constexpr (std::is_same_v<T, proto::Verify>) {
                handle_verify(session, m);
            } else if constexpr (std::is_same_v<T, proto::ClusterSetMaster>) {
                handle_cluster_set_master(session, m);
            } else if constexpr (std::is_same_v<T, proto::QuarantineList>) {
                handle_quarantine_list(session, m);
            } else if constexpr (std::is_same_v<T, proto::QuarantineRead>) {
                handle_quarantine_read(session, m);
            } else if constexpr (std::is_same_v<T, proto::QuarantineRepublish>) {
                handle_quarantine_republish(session, m);
            } else {
                SPIRIT_ASSERT_MSG(false, "not an admin request");
            }
        },
        message);
}

bool Server::refuse_stream_change(Session& session, std::uint64_t request_id) {
    if (may(session, Right::admin, {})) return false;
    reply_error(session, request_id,
                error(errc::unauthorized,
                      "this token may not create, alter, delete or verify streams (its grant has "
                      "admin = false)"));
    return true;
}

void Server::handle_status(Session& session, const proto::Status& status) {
    proto::StatusReply reply;
    reply.request_id = status.request_id;
    reply.node_id = config_.node.id;
    reply.server = server_version();
    reply.uptime_ms = loop_.now_ms() - started_ms_;
    reply.connections = sessions_.size();
    for (auto& [id, s] : sessions_) reply.subscriptions += s.subscriptions.size();
    if (auto streams = store_->list_streams()) {
        reply.streams = static_cast<std::uint64_t>(std::count_if(
            streams->begin(), streams->end(),
            [](const storage::StreamInfo& i) { return !core::is_system_stream(i.name); }));
    }
    const storage::StoreStats stats = store_->stats();
    reply.commits = stats.commits;
    reply.syncs = stats.syncs;
    reply.events_written = stats.events_written;
    reply.bytes_written = stats.bytes_written;
    reply.failed_commits = stats.failed_commits;
    reply.queued_bytes = stats.queued_bytes;
    if (auto failure = store_->failure()) reply.storage_error = failure->message();
    reply.role = cluster_ ? cluster_->role_name() : "single";
    reply.master = config_.node.id;
    reply.epoch = cluster_ ? cluster_->epoch().value() : 1;
    reply.state = cluster_ ? cluster_->state() : "serving";
    if (cluster_) {
        const auto master = cluster_->known_master();
        reply.master = master ? master->value() : "";
        reply.peers = cluster_->peer_status();
        reply.replication_errors = cluster_->errors();
        if (auto outbox = store_->outbox_events()) reply.outbox_events = *outbox;
    }
    fill_operations_status(reply);
    send(session, reply);
}

void Server::handle_stream_list(Session& session, const proto::StreamList& list) {
    // Pages keep a reply far below any frame limit, however many streams.
    const std::size_t limit =
        list.limit == 0
            ? stream_page_max
            : static_cast<std::size_t>(std::min<std::uint64_t>(list.limit, stream_page_max));
    auto streams = store_->list_streams(list.after, limit + 1);
    if (!streams) return reply_error(session, list.request_id, streams.error());
    proto::StreamListReply reply{list.request_id, {}, {}};
    if (streams->size() > limit) {
        streams->pop_back();
        reply.next = streams->back().name;
    }
    for (const auto& i : *streams) {
        if (!core::is_system_stream(i.name)) reply.streams.push_back(describe_stream(i));
    }
    send(session, reply);
}

void Server::handle_stream_info(Session& session, const proto::StreamInfo& request) {
    auto info = store_->stream_info(request.stream);
    if (!info) return reply_error(session, request.request_id, info.error());
    if (!*info) {
        return reply_error(
            session, request.request_id,
            error(errc::not_found, fmt::format("stream {} does not exist", request.stream)));
    }
    send(session, proto::StreamInfoReply{request.request_id, describe_stream(**info)});
}

void Server::handle_stream_create(Session& session, const proto::StreamCreate& create) {
    if (refuse_stream_change(session, create.request_id)) return;
    if (auto valid = core::validate_stream_name(create.stream); !valid) {
        return reply_error(session, create.request_id, valid.error());
    }
    if (auto valid = check_acks(config_, create); !valid) {
        return reply_error(session, create.request_id, valid.error());
    }
    write_path_->create_stream(create.stream, create.policy,
                               done_reply(session, create.request_id));
}

void Server::handle_stream_delete(Session& session, const proto::StreamDelete& removal) {
    if (refuse_stream_change(session, removal.request_id)) return;
    if (auto valid = core::validate_stream_name(removal.stream); !valid) {
        return reply_error(session, removal.request_id, valid.error());
    }
    spdlog::info("stream {}: delete asked by conn={}", removal.stream, session.connection->id());
    write_path_->delete_stream(removal.stream, done_reply(session, removal.request_id),
                               [this, stream = removal.stream] { stream_deleted(stream); });
}

void Server::handle_stream_alter(Session& session, const proto::StreamAlter& alter) {
    if (refuse_stream_change(session, alter.request_id)) return;
    if (auto valid = core::validate_stream_name(alter.stream); !valid) {
        return reply_error(session, alter.request_id, valid.error());
    }
    write_path_->alter_stream(alter.stream, alter.policy, done_reply(session, alter.request_id));
}

void Server::handle_verify(Session& session, const proto::Verify& verify) {
    if (refuse_stream_change(session, verify.request_id)) return;
    auto report = std::make_shared<core::Result<storage::VerifyReport>>();
    const std::string stream = verify.stream;
    const std::uint64_t connection_id = session.connection->id();
    const std::uint64_t request_id = verify.request_id;
    storage::Store* store = store_.get();
    ++store_reads_in_flight_;
    loop_.queue_work(
        [store, stream, report] { *report = store->verify(stream); },
        [this, connection_id, request_id, report] {
            --store_reads_in_flight_;
            Session* s = session_of(connection_id);
            if (s == nullptr) return;
            if (!*report) return reply_error(*s, request_id, report->error());
            const storage::VerifyReport& r = **report;
            proto::VerifyReply reply{
                request_id, r.stream, r.events_checked, r.first_seq, r.last_seq, std::nullopt, ""};
            if (r.first_break) {
                reply.break_seq = r.first_break->seq;
                reply.problem = r.first_break->problem;
                spdlog::error("verify: stream {}: {}", r.stream, r.first_break->problem);
            }
            send(*s, reply);
        });
}

void Server::handle_cluster_set_master(Session& session, const proto::ClusterSetMaster& request) {
    if (!may(session, Right::admin, {})) {
        return reply_error(
            session, request.request_id,
            error(errc::unauthorized,
                  "this token may not name the master (its grant has admin = false)"));
    }
    if (!cluster_) {
        return reply_error(session, request.request_id,
                           error(errc::invalid_argument, "this node is not in a cluster"));
    }
    if (request.master.empty()) {
        return reply_error(session, request.request_id,
                           error(errc::invalid_argument, "no node named to be master"));
    }
    spdlog::info("conn={} names {} the next master", session.connection->id(), request.master);
    cluster_->designate(core::NodeId(request.master), request.force,
                        done_reply(session, request.request_id));
}

void Server::handle_quarantine_list(Session& session, const proto::QuarantineList& list) {
    if (!list.stream.empty()) {
        auto valid = core::validate_stream_name(list.stream, core::NameScope::system);
        if (!valid) return reply_error(session, list.request_id, valid.error());
        if (!may_on_quarantine(session, Right::subscribe, list.stream)) {
            return reply_error(session, list.request_id,
                               error(errc::unauthorized,
                                     fmt::format("this token may not read the quarantine of {} "
                                                 "(it may not subscribe to it)",
                                                 list.stream)));
        }
    }
    // The listing walks every quarantine key: on the thread pool, as verify.
    auto summaries = std::make_shared<core::Result<std::vector<storage::QuarantineSummary>>>();
    storage::Store* store = store_.get();
    ++store_reads_in_flight_;
    loop_.queue_work([store, summaries] { *summaries = store->quarantine_streams(); },
                     [this, connection_id = session.connection->id(), list, summaries] {
                         --store_reads_in_flight_;
                         if (Session* s = session_of(connection_id)) {
                             quarantine_listed(*s, list, std::move(*summaries));
                         }
                     });
}

void Server::quarantine_listed(Session& session, const proto::QuarantineList& list,
                               core::Result<std::vector<storage::QuarantineSummary>> summaries) {
    if (!summaries) return reply_error(session, list.request_id, summaries.error());
    proto::QuarantineListReply reply{list.request_id, {}};
    std::size_t bytes = 0;
    for (const storage::QuarantineSummary& s : *summaries) {
        // Without a name: the streams the token may read.
        const bool wanted = list.stream.empty()
                                ? may_on_quarantine(session, Right::subscribe, s.stream)
                                : s.stream == list.stream;
        if (!wanted) continue;
        bytes += listed_bytes(s);
        reply.streams.push_back(listed(s));
    }
    if (bytes > quarantine_list_bytes_max) {
        return reply_error(
            session, list.request_id,
            error(errc::limit_exceeded,
                  fmt::format("{} streams have quarantined events, a list of about {} bytes "
                              "(limit {}): ask for one stream at a time",
                              reply.streams.size(), bytes, quarantine_list_bytes_max)));
    }
    send(session, reply);
}

void Server::handle_quarantine_read(Session& session, const proto::QuarantineRead& read) {
    auto valid = core::validate_stream_name(read.stream, core::NameScope::system);
    if (!valid) return reply_error(session, read.request_id, valid.error());
    if (!may_on_quarantine(session, Right::subscribe, read.stream)) {
        return reply_error(session, read.request_id,
                           error(errc::unauthorized,
                                 fmt::format("this token may not read the quarantine of {} (it "
                                             "may not subscribe to it)",
                                             read.stream)));
    }
    storage::QuarantineReadOptions options;
    options.after = read_after(read);
    options.events_max = read.limit == 0 ? quarantine_page_events_max
                                         : static_cast<std::size_t>(std::min<std::uint64_t>(
                                               read.limit, quarantine_page_events_max));
    options.bytes_max = quarantine_page_bytes_max;
    auto page = store_->quarantine_read(read.stream, options);
    if (!page) return reply_error(session, read.request_id, page.error());
    // The envelopes as stored, back to back; the reply's views point into them.
    core::Bytes encoded;
    std::vector<std::size_t> ends;
    for (const storage::QuarantinedEvent& e : page->events) {
        core::encode_envelope(encoded, e.envelope.view());
        ends.push_back(encoded.size());
    }
    proto::QuarantineReadReply reply{read.request_id, read.stream, {}, std::nullopt};
    std::size_t start = 0;
    for (std::size_t end : ends) {
        reply.envelopes.push_back(core::ByteView(encoded).subspan(start, end - start));
        start = end;
    }
    if (page->next) {
        reply.next =
            proto::QuarantinePosition{page->next->seq, page->next->epoch, page->next->hash};
    }
    send(session, reply);
}

void Server::handle_quarantine_republish(Session& session,
                                         const proto::QuarantineRepublish& request) {
    const std::uint64_t id = request.request_id;
    if (auto valid = core::validate_stream_name(request.stream); !valid) {
        return reply_error(session, id, valid.error());
    }
    if (!may_on_quarantine(session, Right::publish, request.stream)) {
        return reply_error(session, id,
                           error(errc::unauthorized,
                                 fmt::format("this token may not publish to {}", request.stream)));
    }
    if (request.entries.empty()) {
        return reply_error(session, id,
                           error(errc::invalid_argument, "no quarantined events to republish"));
    }
    // Owned until publish() returns: the write path copies what it keeps.
    // Counted as an append counts a batch, and refused as soon as it is
    // over (so no more than one batch is ever read for a request).
    std::vector<storage::QuarantinedEvent> events;
    std::size_t bytes = 0;
    for (const proto::QuarantineEntry& entry : request.entries) {
        auto found = find_quarantined(*store_, request.stream, entry);
        if (!found) return reply_error(session, id, found.error());
        const core::Envelope& e = found->envelope;
        bytes += e.type.size() + e.metadata.size() + e.payload.size() + 128;
        if (bytes > core::limits::batch_bytes_max) {
            return reply_error(
                session, id,
                error(errc::limit_exceeded,
                      fmt::format("stream {}: republishing these {} events is an append of more "
                                  "than {} bytes; republish fewer at once",
                                  request.stream, request.entries.size(),
                                  core::limits::batch_bytes_max)));
        }
        events.push_back(std::move(*found));
    }
    std::vector<core::EventDraft> drafts;
    drafts.reserve(events.size());
    for (const storage::QuarantinedEvent& e : events) {
        drafts.push_back(core::EventDraft{e.envelope.id, e.envelope.type, e.envelope.metadata,
                                          e.envelope.payload});
    }
    spdlog::info("conn={} republishes {} quarantined events of {}", session.connection->id(),
                 drafts.size(), request.stream);
    start_publish(session, id, PublishRequest{request.stream, std::nullopt, drafts}, bytes);
}

}  // namespace spirit::daemon
