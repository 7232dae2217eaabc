// The client protocol's codec: the fields of each client -> daemon and
// daemon -> client message, read and written in wire order
// (core/protocol_client.h, docs/protocol.md).
#include "core/assert.h"
#include "core/limits.h"
#include "core/protocol_codec.h"

namespace spirit::core::protocol::detail {

namespace {

// A node id's bytes at most (core/node_id.h).
constexpr std::size_t node_id_bytes_max = 64;

// --- client -> daemon ---

Publish read_publish(Reader& r, std::size_t batch_events_max) {
    Publish m;
    m.request_id = r.u64("request_id");
    m.stream = r.text("stream", limits::stream_name_bytes_max);
    if (auto s = r.opt_u64("expected_last_seq")) m.expected_last_seq = Seq{*s};
    m.events = read_events(r, batch_events_max);
    return m;
}

Subscribe read_subscribe(Reader& r) {
    Subscribe m;
    m.subscription_id = r.u64("subscription_id");
    m.target = r.owned_text("target", limits::stream_name_bytes_max);
    m.from = r.enumerated<From>("from", From::new_);
    m.from_value = r.u64("from_value");
    m.durable = r.opt_text("durable", limits::stream_name_bytes_max);
    m.credit_events = r.u64("credit_events");
    m.credit_bytes = r.u64("credit_bytes");
    return m;
}

// StreamInfo, StreamDelete, Verify: a request id and a stream name.
template <class Request>
Request read_stream_request(Reader& r) {
    Request m;
    m.request_id = r.u64("request_id");
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    return m;
}

// StreamCreate, StreamAlter: a stream request with a policy.
template <class Request>
Request read_policy_request(Reader& r) {
    Request m = read_stream_request<Request>(r);
    m.policy = read_policy(r);
    return m;
}

QuarantineRead read_quarantine_read(Reader& r) {
    QuarantineRead m;
    m.request_id = r.u64("request_id");
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.after_seq = Seq{r.u64("after_seq")};
    m.after_epoch = Epoch{r.u64("after_epoch")};
    m.after_hash = r.opt_fixed<Digest>("after_hash");
    m.limit = r.u64("limit");
    return m;
}

QuarantineRepublish read_quarantine_republish(Reader& r, std::size_t batch_events_max) {
    QuarantineRepublish m;
    m.request_id = r.u64("request_id");
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    const List list = r.list("entries", batch_events_max);
    m.entries.reserve(list.items.size());
    r.items(list, [&](Reader& e) {
        QuarantineEntry entry;
        entry.seq = Seq{e.u64("seq")};
        entry.epoch = Epoch{e.u64("epoch")};
        m.entries.push_back(entry);
    });
    return m;
}

// --- daemon -> client ---

Welcome read_welcome(Reader& r) {
    Welcome m;
    m.version = r.bounded<std::uint32_t>("version");
    m.node_id = r.owned_text("node_id");
    m.server = r.owned_text("server");
    m.frame_bytes_max = r.u64("frame_bytes_max");
    m.batch_events_max = r.bounded<std::uint32_t>("batch_events_max");
    return m;
}

Subscribed read_subscribed(Reader& r) {
    Subscribed m;
    m.subscription_id = r.u64("subscription_id");
    const List list = r.list("positions", list_items_max);
    r.items(list, [&](Reader& p) {
        StreamPosition pos;
        pos.stream = p.owned_text("stream", limits::stream_name_bytes_max);
        pos.next_seq = Seq{p.u64("next_seq")};
        pos.prev_hash = p.fixed<Digest>("prev_hash");
        m.positions.push_back(std::move(pos));
    });
    return m;
}

// The storage, readiness and consumer fields at the end of a StatusReply.
void read_operations_status(Reader& r, StatusReply& m) {
    m.map_bytes = r.u64("map_bytes");
    m.used_bytes = r.u64("used_bytes");
    m.disk_free_bytes = r.u64("disk_free_bytes");
    m.ready = r.u64("ready") != 0;
    m.ready_detail = r.owned_text("ready_detail");
    const List consumers = r.list("consumers", status_consumers_max);
    r.items(consumers, [&](Reader& c) {
        ConsumerStatus cs;
        cs.consumer = c.owned_text("consumer", limits::stream_name_bytes_max);
        cs.stream = c.owned_text("stream", limits::stream_name_bytes_max);
        cs.acked = Seq{c.u64("acked")};
        cs.last_seq = Seq{c.u64("last_seq")};
        cs.lag_events = c.u64("lag_events");
        m.consumers.push_back(std::move(cs));
    });
}

// The peers and replication errors at the end of a StatusReply.
void read_replication_status(Reader& r, StatusReply& m) {
    const List peers = r.list("peers", 256);
    r.items(peers, [&](Reader& p) {
        PeerStatus ps;
        ps.node_id = p.owned_text("node_id", 64);
        ps.connected = p.u64("connected") != 0;
        ps.lag_events = p.u64("lag_events");
        ps.detail = p.owned_text("detail");
        if (p.more()) ps.lag_ms = p.u64("lag_ms");
        m.peers.push_back(std::move(ps));
    });
    const List errors = r.list("replication_errors", list_items_max);
    r.items(errors, [&](Reader& e) {
        ReplicationError re;
        re.stream = e.owned_text("stream", limits::stream_name_bytes_max);
        re.message = e.owned_text("message");
        m.replication_errors.push_back(std::move(re));
    });
    m.outbox_events = r.u64("outbox_events");
    if (r.more()) m.epoch = r.u64("epoch");
    if (r.more()) m.state = r.owned_text("state");
    if (r.more()) read_operations_status(r, m);
}

StatusReply read_status_reply(Reader& r) {
    StatusReply m;
    m.request_id = r.u64("request_id");
    m.node_id = r.owned_text("node_id");
    m.server = r.owned_text("server");
    m.uptime_ms = r.u64("uptime_ms");
    m.connections = r.u64("connections");
    m.subscriptions = r.u64("subscriptions");
    m.streams = r.u64("streams");
    m.commits = r.u64("commits");
    m.syncs = r.u64("syncs");
    m.events_written = r.u64("events_written");
    m.bytes_written = r.u64("bytes_written");
    m.failed_commits = r.u64("failed_commits");
    m.queued_bytes = r.u64("queued_bytes");
    m.storage_error = r.owned_text("storage_error");
    m.role = r.owned_text("role", 16);
    m.master = r.owned_text("master", 64);
    read_replication_status(r, m);
    return m;
}

StreamDescription read_description(Reader& r) {
    StreamDescription d;
    d.name = r.owned_text("name", limits::stream_name_bytes_max);
    d.policy = read_policy(r);
    d.first_seq = Seq{r.u64("first_seq")};
    d.last_seq = Seq{r.u64("last_seq")};
    d.event_count = r.u64("event_count");
    d.event_bytes = r.u64("event_bytes");
    d.last_epoch = Epoch{r.u64("last_epoch")};
    d.last_timestamp_ns = TimestampNs{r.u64("last_timestamp_ns")};
    d.last_hash = r.fixed<Digest>("last_hash");
    d.created_ns = TimestampNs{r.u64("created_ns")};
    return d;
}

StreamListReply read_stream_list_reply(Reader& r) {
    StreamListReply m;
    m.request_id = r.u64("request_id");
    const List list = r.list("streams", list_items_max);
    r.items(list, [&](Reader& d) { m.streams.push_back(read_description(d)); });
    m.next = r.owned_text("next", limits::stream_name_bytes_max);
    return m;
}

StreamInfoReply read_stream_info_reply(Reader& r) {
    StreamInfoReply m;
    m.request_id = r.u64("request_id");
    const List list = r.list("stream", 1);
    if (!r.failed() && list.items.size() != 1) r.fail("stream", "expected one description");
    r.items(list, [&](Reader& d) { m.stream = read_description(d); });
    return m;
}

VerifyReply read_verify_reply(Reader& r) {
    VerifyReply m;
    m.request_id = r.u64("request_id");
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.events_checked = r.u64("events_checked");
    m.first_seq = Seq{r.u64("first_seq")};
    m.last_seq = Seq{r.u64("last_seq")};
    if (auto s = r.opt_u64("break_seq")) m.break_seq = Seq{*s};
    m.problem = r.owned_text("problem");
    return m;
}

QuarantineListReply read_quarantine_list_reply(Reader& r) {
    QuarantineListReply m;
    m.request_id = r.u64("request_id");
    const List streams = r.list("streams", list_items_max);
    r.items(streams, [&](Reader& s) {
        QuarantineStream q;
        q.stream = s.owned_text("stream", limits::stream_name_bytes_max);
        q.events = s.u64("events");
        q.first_seq = Seq{s.u64("first_seq")};
        q.last_seq = Seq{s.u64("last_seq")};
        const List epochs = s.list("epochs", list_items_max);
        s.items(epochs, [&](Reader& e) {
            q.epochs.push_back(QuarantineEpochCount{Epoch{e.u64("epoch")}, e.u64("events")});
        });
        m.streams.push_back(std::move(q));
    });
    return m;
}

QuarantineReadReply read_quarantine_read_reply(Reader& r) {
    QuarantineReadReply m;
    m.request_id = r.u64("request_id");
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.envelopes = r.envelopes("envelopes", list_items_max);
    QuarantinePosition next;
    const bool more = r.opt_group("next", [&](Reader& p) {
        next.seq = Seq{p.u64("seq")};
        next.epoch = Epoch{p.u64("epoch")};
        next.hash = p.fixed<Digest>("hash");
    });
    if (more) m.next = next;
    return m;
}

}  // namespace

Message read_client_request(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::hello: {
            Hello m;
            m.version = r.bounded<std::uint32_t>("version");
            m.client_name = r.owned_text("client_name", 256);
            m.token = r.opt_text("token", 1024);
            return m;
        }
        case Type::publish:
            return read_publish(r, batch_events_max);
        case Type::subscribe:
            return read_subscribe(r);
        case Type::credit:
            return Credit{r.u64("subscription_id"), r.u64("events"), r.u64("bytes")};
        case Type::ack: {
            Ack m;
            m.subscription_id = r.u64("subscription_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.seq = Seq{r.u64("seq")};
            return m;
        }
        case Type::unsubscribe:
            return Unsubscribe{r.u64("subscription_id")};
        case Type::status:
            return Status{r.u64("request_id")};
        case Type::stream_list: {
            StreamList m;
            m.request_id = r.u64("request_id");
            m.after = r.owned_text("after", limits::stream_name_bytes_max);
            m.limit = r.u64("limit");
            return m;
        }
        case Type::stream_info:
            return read_stream_request<StreamInfo>(r);
        case Type::stream_create:
            return read_policy_request<StreamCreate>(r);
        case Type::stream_alter:
            return read_policy_request<StreamAlter>(r);
        case Type::stream_delete:
            return read_stream_request<StreamDelete>(r);
        case Type::verify:
            return read_stream_request<Verify>(r);
        case Type::cluster_set_master: {
            ClusterSetMaster m;
            m.request_id = r.u64("request_id");
            m.master = r.owned_text("master", node_id_bytes_max);
            if (r.more()) m.force = r.u64("force") != 0;
            return m;
        }
        case Type::quarantine_list: {
            QuarantineList m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            return m;
        }
        case Type::quarantine_read:
            return read_quarantine_read(r);
        case Type::quarantine_republish:
            return read_quarantine_republish(r, batch_events_max);
        case Type::backup:
            return Backup{r.u64("request_id")};
        case Type::topology:
            return Topology{r.u64("request_id")};
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a client request type");
    return Status{};
}

Message read_daemon_reply(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::welcome:
            return read_welcome(r);
        case Type::publish_ack:
            return read_publish_ack(r, batch_events_max);
        case Type::events: {
            Events m;
            m.subscription_id = r.u64("subscription_id");
            m.envelopes = r.envelopes("envelopes", list_items_max);
            return m;
        }
        case Type::subscribed:
            return read_subscribed(r);
        case Type::subscription_ended: {
            SubscriptionEnded m;
            m.subscription_id = r.u64("subscription_id");
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        case Type::error: {
            ErrorReply m;
            m.request_id = r.opt_u64("request_id");
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        case Type::status_reply:
            return read_status_reply(r);
        case Type::stream_list_reply:
            return read_stream_list_reply(r);
        case Type::stream_info_reply:
            return read_stream_info_reply(r);
        case Type::done:
            return Done{r.u64("request_id")};
        case Type::verify_reply:
            return read_verify_reply(r);
        case Type::quarantine_list_reply:
            return read_quarantine_list_reply(r);
        case Type::quarantine_read_reply:
            return read_quarantine_read_reply(r);
        case Type::backup_chunk: {
            BackupChunk m;
            m.request_id = r.u64("request_id");
            m.offset = r.u64("offset");
            m.bytes_estimate = r.u64("bytes_estimate");
            m.data = r.bin("data", backup_chunk_bytes_max);
            return m;
        }
        case Type::backup_done:
            return BackupDone{r.u64("request_id"), r.u64("bytes"), r.fixed<Digest>("hash")};
        case Type::topology_reply:
            return read_topology_reply(r);
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a daemon reply type");
    return Done{};
}

namespace {

void pack_description(Packer& pk, const StreamDescription& d) {
    pk.pack_array(15);
    pack_text(pk, d.name);
    pack_policy(pk, d.policy);
    pk.pack_uint64(d.first_seq.value());
    pk.pack_uint64(d.last_seq.value());
    pk.pack_uint64(d.event_count);
    pk.pack_uint64(d.event_bytes);
    pk.pack_uint64(d.last_epoch.value());
    pk.pack_uint64(d.last_timestamp_ns.value());
    pack_bin(pk, ByteView(d.last_hash.bytes));
    pk.pack_uint64(d.created_ns.value());
}

// A request id and a stream name (StreamInfo, StreamDelete, Verify,
// QuarantineList).
void pack_stream_request(Packer& pk, Type type, std::uint64_t request_id, std::string_view stream) {
    pack_head(pk, type, 2);
    pk.pack_uint64(request_id);
    pack_text(pk, stream);
}

// Writes the client -> daemon messages.
struct RequestWriter {
    Packer& pk;

    void operator()(const Hello& m) {
        pack_head(pk, Type::hello, 3);
        pk.pack_uint32(m.version);
        pack_text(pk, m.client_name);
        pack_optional(pk, m.token, [&](const std::string& t) { pack_text(pk, t); });
    }
    void operator()(const Publish& m) {
        pack_publish_head(pk, Type::publish, m.request_id, m.stream, m.expected_last_seq);
        pack_events(pk, m.events);
    }
    void operator()(const Subscribe& m) {
        pack_head(pk, Type::subscribe, 7);
        pk.pack_uint64(m.subscription_id);
        pack_text(pk, m.target);
        pk.pack_uint8(static_cast<std::uint8_t>(m.from));
        pk.pack_uint64(m.from_value);
        pack_optional(pk, m.durable, [&](const std::string& d) { pack_text(pk, d); });
        pk.pack_uint64(m.credit_events);
        pk.pack_uint64(m.credit_bytes);
    }
    void operator()(const Credit& m) {
        pack_head(pk, Type::credit, 3);
        pk.pack_uint64(m.subscription_id);
        pk.pack_uint64(m.events);
        pk.pack_uint64(m.bytes);
    }
    void operator()(const Ack& m) {
        pack_head(pk, Type::ack, 3);
        pk.pack_uint64(m.subscription_id);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
    }
    void operator()(const Unsubscribe& m) {
        pack_head(pk, Type::unsubscribe, 1);
        pk.pack_uint64(m.subscription_id);
    }
    void operator()(const Status& m) {
        pack_head(pk, Type::status, 1);
        pk.pack_uint64(m.request_id);
    }
    void operator()(const StreamList& m) {
        pack_head(pk, Type::stream_list, 3);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.after);
        pk.pack_uint64(m.limit);
    }
    void operator()(const StreamInfo& m) {
        pack_stream_request(pk, Type::stream_info, m.request_id, m.stream);
    }
    void operator()(const StreamCreate& m) { pack_policy_request(Type::stream_create, m); }
    void operator()(const StreamAlter& m) { pack_policy_request(Type::stream_alter, m); }
    template <class Request>
    void pack_policy_request(Type type, const Request& m) {
        pack_head(pk, type, 8);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pack_policy(pk, m.policy);
    }
    void operator()(const StreamDelete& m) {
        pack_stream_request(pk, Type::stream_delete, m.request_id, m.stream);
    }
    void operator()(const Verify& m) {
        pack_stream_request(pk, Type::verify, m.request_id, m.stream);
    }
    void operator()(const ClusterSetMaster& m) {
        pack_head(pk, Type::cluster_set_master, 3);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.master);
        pk.pack_uint8(m.force ? 1 : 0);
    }
    void operator()(const QuarantineList& m) {
        pack_stream_request(pk, Type::quarantine_list, m.request_id, m.stream);
    }
    void operator()(const QuarantineRead& m) {
        pack_head(pk, Type::quarantine_read, 6);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.after_seq.value());
        pk.pack_uint64(m.after_epoch.value());
        pack_optional(pk, m.after_hash, [&](const Digest& h) { pack_bin(pk, ByteView(h.bytes)); });
        pk.pack_uint64(m.limit);
    }
    void operator()(const Backup& m) {
        pack_head(pk, Type::backup, 1);
        pk.pack_uint64(m.request_id);
    }
    void operator()(const Topology& m) {
        pack_head(pk, Type::topology, 1);
        pk.pack_uint64(m.request_id);
    }
    void operator()(const QuarantineRepublish& m) {
        pack_head(pk, Type::quarantine_republish, 3);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pk.pack_array(static_cast<std::uint32_t>(m.entries.size()));
        for (const QuarantineEntry& e : m.entries) {
            pk.pack_array(2);
            pk.pack_uint64(e.seq.value());
            pk.pack_uint64(e.epoch.value());
        }
    }
};

// Writes the daemon -> client messages.
struct ReplyWriter {
    Packer& pk;

    void operator()(const Welcome& m) {
        pack_head(pk, Type::welcome, 5);
        pk.pack_uint32(m.version);
        pack_text(pk, m.node_id);
        pack_text(pk, m.server);
        pk.pack_uint64(m.frame_bytes_max);
        pk.pack_uint32(m.batch_events_max);
    }
    void operator()(const PublishAck& m) {
        pack_head(pk, Type::publish_ack, 9);
        pack_ack_fields(pk, m);
    }
    void operator()(const Events& m) {
        pack_head(pk, Type::events, 2);
        pk.pack_uint64(m.subscription_id);
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
    }
    void operator()(const Subscribed& m) {
        pack_head(pk, Type::subscribed, 2);
        pk.pack_uint64(m.subscription_id);
        pk.pack_array(static_cast<std::uint32_t>(m.positions.size()));
        for (const StreamPosition& p : m.positions) {
            pk.pack_array(3);
            pack_text(pk, p.stream);
            pk.pack_uint64(p.next_seq.value());
            pack_bin(pk, ByteView(p.prev_hash.bytes));
        }
    }
    void operator()(const SubscriptionEnded& m) {
        pack_head(pk, Type::subscription_ended, 3);
        pk.pack_uint64(m.subscription_id);
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const ErrorReply& m) {
        pack_head(pk, Type::error, 3);
        pack_optional(pk, m.request_id, [&](std::uint64_t id) { pk.pack_uint64(id); });
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const StatusReply& m) {
        pack_head(pk, Type::status_reply, 27);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.node_id);
        pack_text(pk, m.server);
        for (std::uint64_t v :
             {m.uptime_ms, m.connections, m.subscriptions, m.streams, m.commits, m.syncs,
              m.events_written, m.bytes_written, m.failed_commits, m.queued_bytes}) {
            pk.pack_uint64(v);
        }
        pack_text(pk, m.storage_error);
        pack_text(pk, m.role);
        pack_text(pk, m.master);
        pk.pack_array(static_cast<std::uint32_t>(m.peers.size()));
        for (const PeerStatus& p : m.peers) {
            pk.pack_array(5);
            pack_text(pk, p.node_id);
            pk.pack_uint8(p.connected ? 1 : 0);
            pk.pack_uint64(p.lag_events);
            pack_text(pk, p.detail);
            pk.pack_uint64(p.lag_ms);
        }
        pk.pack_array(static_cast<std::uint32_t>(m.replication_errors.size()));
        for (const ReplicationError& e : m.replication_errors) {
            pk.pack_array(2);
            pack_text(pk, e.stream);
            pack_text(pk, e.message);
        }
        pk.pack_uint64(m.outbox_events);
        pk.pack_uint64(m.epoch);
        pack_text(pk, m.state);
        pack_operations_status(m);
    }
    void pack_operations_status(const StatusReply& m) {
        pk.pack_uint64(m.map_bytes);
        pk.pack_uint64(m.used_bytes);
        pk.pack_uint64(m.disk_free_bytes);
        pk.pack_uint8(m.ready ? 1 : 0);
        pack_text(pk, m.ready_detail);
        pk.pack_array(static_cast<std::uint32_t>(m.consumers.size()));
        for (const ConsumerStatus& c : m.consumers) {
            pk.pack_array(5);
            pack_text(pk, c.consumer);
            pack_text(pk, c.stream);
            pk.pack_uint64(c.acked.value());
            pk.pack_uint64(c.last_seq.value());
            pk.pack_uint64(c.lag_events);
        }
    }
    void operator()(const BackupChunk& m) {
        pack_head(pk, Type::backup_chunk, 4);
        pk.pack_uint64(m.request_id);
        pk.pack_uint64(m.offset);
        pk.pack_uint64(m.bytes_estimate);
        pack_bin(pk, m.data);
    }
    void operator()(const BackupDone& m) {
        pack_head(pk, Type::backup_done, 3);
        pk.pack_uint64(m.request_id);
        pk.pack_uint64(m.bytes);
        pack_bin(pk, ByteView(m.hash.bytes));
    }
    void operator()(const TopologyReply& m) { pack_topology_reply(pk, m); }
    void operator()(const StreamListReply& m) {
        pack_head(pk, Type::stream_list_reply, 3);
        pk.pack_uint64(m.request_id);
        pk.pack_array(static_cast<std::uint32_t>(m.streams.size()));
        for (const StreamDescription& d : m.streams) pack_description(pk, d);
        pack_text(pk, m.next);
    }
    void operator()(const StreamInfoReply& m) {
        pack_head(pk, Type::stream_info_reply, 2);
        pk.pack_uint64(m.request_id);
        pk.pack_array(1);
        pack_description(pk, m.stream);
    }
    void operator()(const Done& m) {
        pack_head(pk, Type::done, 1);
        pk.pack_uint64(m.request_id);
    }
    void operator()(const VerifyReply& m) {
        pack_head(pk, Type::verify_reply, 7);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.events_checked);
        pk.pack_uint64(m.first_seq.value());
        pk.pack_uint64(m.last_seq.value());
        pack_optional(pk, m.break_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
        pack_text(pk, m.problem);
    }
    void operator()(const QuarantineListReply& m) {
        pack_head(pk, Type::quarantine_list_reply, 2);
        pk.pack_uint64(m.request_id);
        pk.pack_array(static_cast<std::uint32_t>(m.streams.size()));
        for (const QuarantineStream& q : m.streams) {
            pk.pack_array(5);
            pack_text(pk, q.stream);
            pk.pack_uint64(q.events);
            pk.pack_uint64(q.first_seq.value());
            pk.pack_uint64(q.last_seq.value());
            pk.pack_array(static_cast<std::uint32_t>(q.epochs.size()));
            for (const QuarantineEpochCount& e : q.epochs) {
                pk.pack_array(2);
                pk.pack_uint64(e.epoch.value());
                pk.pack_uint64(e.events);
            }
        }
    }
    void operator()(const QuarantineReadReply& m) {
        pack_head(pk, Type::quarantine_read_reply, 4);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
        pack_optional(pk, m.next, [&](const QuarantinePosition& p) {
            pk.pack_array(3);
            pk.pack_uint64(p.seq.value());
            pk.pack_uint64(p.epoch.value());
            pack_bin(pk, ByteView(p.hash.bytes));
        });
    }
};

// Both directions of the client protocol; anything else is a caller's bug.
struct ClientWriter : RequestWriter, ReplyWriter {
    using RequestWriter::operator();
    using ReplyWriter::operator();
    template <class Other>
    void operator()(const Other&) {
        SPIRIT_ASSERT_MSG(false, "not a client protocol message");
    }
};

}  // namespace

void pack_client_message(Packer& pk, const Message& message) {
    std::visit(ClientWriter{{pk}, {pk}}, message);
}

}  // namespace spirit::core::protocol::detail
