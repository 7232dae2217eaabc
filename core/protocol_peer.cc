// The peer links' codec: the fields of each node <-> node message, read and
// written in wire order (core/protocol_peer.h).
#include "core/assert.h"
#include "core/limits.h"
#include "core/protocol_codec.h"

namespace spirit::core::protocol::detail {

namespace {

constexpr std::size_t node_id_bytes_max = 64;
// Seqs one Probe asks for.
constexpr std::size_t probe_seqs_max = 64;

bool flag(Reader& r, const char* field) {
    const std::uint64_t v = r.u64(field);
    if (v > 1) r.fail(field, fmt::format("{} is not 0 or 1", v), errc::invalid_argument);
    return v == 1;
}

void pack_digest(Packer& pk, const Digest& d) {
    pack_bin(pk, ByteView(d.bytes));
}

PeerHello read_hello(Reader& r) {
    PeerHello m;
    m.version = r.bounded<std::uint32_t>("version");
    m.cluster = r.owned_text("cluster", 64);
    m.node_id = r.owned_text("node_id", node_id_bytes_max);
    m.epoch = Epoch{r.u64("epoch")};
    m.master = r.owned_text("master", node_id_bytes_max);
    m.fresh = flag(r, "fresh");
    return m;
}

// Authors in one version vector: members of a cluster, with their
// instances (a few wiped data dirs each).
constexpr std::size_t versions_max = 1024;
// Sealed events in one TopologyEvents frame.
constexpr std::size_t topology_events_max = 4096;

// A version vector of `$topology`, the optional last field of a message.
std::vector<TopologyVersion> read_versions(Reader& r) {
    std::vector<TopologyVersion> out;
    if (!r.more()) return out;  // a sender without $topology
    const List list = r.list("versions", versions_max);
    r.items(list, [&](Reader& v) {
        TopologyVersion t;
        t.node = v.owned_text("node", node_id_bytes_max);
        t.instance = v.u64("instance");
        t.seq = v.u64("seq");
        out.push_back(std::move(t));
    });
    return out;
}

Heartbeat read_heartbeat(Reader& r) {
    Heartbeat m;
    m.epoch = Epoch{r.u64("epoch")};
    m.master = r.owned_text("master", node_id_bytes_max);
    m.caught_up = flag(r, "caught_up");
    m.versions = read_versions(r);
    return m;
}

VoteRequest read_vote_request(Reader& r) {
    VoteRequest m;
    m.epoch = Epoch{r.u64("epoch")};
    m.pre = flag(r, "pre");
    m.forced = flag(r, "forced");
    return m;
}

VoteResponse read_vote_response(Reader& r) {
    VoteResponse m;
    m.epoch = Epoch{r.u64("epoch")};
    m.pre = flag(r, "pre");
    m.granted = flag(r, "granted");
    m.known = Epoch{r.u64("known")};
    m.versions = read_versions(r);
    return m;
}

Positions read_positions(Reader& r) {
    Positions m;
    m.epoch = Epoch{r.u64("epoch")};
    m.fresh = flag(r, "fresh");
    const List list = r.list("streams", list_items_max);
    r.items(list, [&](Reader& p) {
        CopyPosition c;
        c.stream = p.owned_text("stream", limits::stream_name_bytes_max);
        c.confirmed = Epoch{p.u64("confirmed")};
        c.last_seq = Seq{p.u64("last_seq")};
        c.last_hash = p.fixed<Digest>("last_hash");
        c.policy = read_policy(p);
        m.streams.push_back(std::move(c));
    });
    m.more = flag(r, "more");
    return m;
}

Replicate read_replicate(Reader& r) {
    Replicate m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.policy = read_policy(r);
    m.prev_seq = Seq{r.u64("prev_seq")};
    m.prev_hash = r.fixed<Digest>("prev_hash");
    m.history = Seq{r.u64("history")};
    m.visible = Seq{r.u64("visible")};
    m.envelopes = r.envelopes("envelopes", list_items_max);
    return m;
}

ReplicaAck read_replica_ack(Reader& r) {
    ReplicaAck m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.seq = Seq{r.u64("seq")};
    m.hash = r.fixed<Digest>("hash");
    m.confirmed = Epoch{r.u64("confirmed")};
    return m;
}

ReplicaRefused read_replica_refused(Reader& r) {
    ReplicaRefused m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.seq = Seq{r.u64("seq")};
    m.code = r.bounded<std::uint32_t>("code");
    m.message = r.owned_text("message");
    m.resume_seq = Seq{r.u64("resume_seq")};
    m.resume_hash = r.fixed<Digest>("resume_hash");
    return m;
}

Forward read_forward(Reader& r, std::size_t batch_events_max) {
    Forward m;
    m.epoch = Epoch{r.u64("epoch")};
    m.request_id = r.u64("request_id");
    m.stream = r.text("stream", limits::stream_name_bytes_max);
    if (auto seq = r.opt_u64("expected_last_seq")) m.expected_last_seq = Seq{*seq};
    m.events = read_events(r, batch_events_max);
    return m;
}

ForwardError read_forward_error(Reader& r) {
    ForwardError m;
    m.epoch = Epoch{r.u64("epoch")};
    m.request_id = r.u64("request_id");
    m.code = r.bounded<std::uint32_t>("code");
    m.message = r.owned_text("message");
    return m;
}

Probe read_probe(Reader& r) {
    Probe m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    for (std::uint64_t seq : r.u64s("seqs", probe_seqs_max)) m.seqs.push_back(Seq{seq});
    return m;
}

ProbeReply read_probe_reply(Reader& r) {
    ProbeReply m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    const List list = r.list("hashes", probe_seqs_max);
    r.items(list, [&](Reader& h) {
        SeqHash sh;
        sh.seq = Seq{h.u64("seq")};
        sh.hash = h.opt_fixed<Digest>("hash");
        m.hashes.push_back(sh);
    });
    return m;
}

Truncate read_truncate(Reader& r) {
    Truncate m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.after_seq = Seq{r.u64("after_seq")};
    m.hash = r.fixed<Digest>("hash");
    m.remove = flag(r, "remove");
    m.history = Seq{r.u64("history")};
    return m;
}

Fetch read_fetch(Reader& r) {
    Fetch m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.from_seq = Seq{r.u64("from_seq")};
    m.to_seq = Seq{r.u64("to_seq")};
    return m;
}

FetchReply read_fetch_reply(Reader& r) {
    FetchReply m;
    m.epoch = Epoch{r.u64("epoch")};
    m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
    m.code = r.bounded<std::uint32_t>("code");
    m.message = r.owned_text("message");
    m.prev_seq = Seq{r.u64("prev_seq")};
    m.prev_hash = r.fixed<Digest>("prev_hash");
    m.envelopes = r.envelopes("envelopes", list_items_max);
    return m;
}

}  // namespace

Message read_peer_message(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::peer_hello:
            return read_hello(r);
        case Type::heartbeat:
            return read_heartbeat(r);
        case Type::positions:
            return read_positions(r);
        case Type::replicate:
            return read_replicate(r);
        case Type::replica_ack:
            return read_replica_ack(r);
        case Type::replica_refused:
            return read_replica_refused(r);
        case Type::forward:
            return read_forward(r, batch_events_max);
        case Type::forward_ack: {
            ForwardAck m;
            m.epoch = Epoch{r.u64("epoch")};
            m.ack = read_publish_ack(r, batch_events_max);
            return m;
        }
        case Type::forward_error:
            return read_forward_error(r);
        case Type::probe:
            return read_probe(r);
        case Type::probe_reply:
            return read_probe_reply(r);
        case Type::truncate:
            return read_truncate(r);
        case Type::fetch:
            return read_fetch(r);
        case Type::fetch_reply:
            return read_fetch_reply(r);
        case Type::vote_request:
            return read_vote_request(r);
        case Type::vote_response:
            return read_vote_response(r);
        case Type::timeout_now:
            return TimeoutNow{Epoch{r.u64("epoch")}};
        case Type::topology_events:
            return TopologyEvents{r.envelopes("events", topology_events_max)};
        case Type::visible: {
            Visible m;
            m.epoch = Epoch{r.u64("epoch")};
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.seq = Seq{r.u64("seq")};
            return m;
        }
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a peer message type");
    return Heartbeat{};
}

void pack_replicate_head(Packer& pk, Epoch epoch, std::string_view stream,
                         const StreamPolicy& policy, Seq prev_seq, const Digest& prev_hash,
                         Seq history, Seq visible) {
    pack_head(pk, Type::replicate, 13);
    pk.pack_uint64(epoch.value());
    pack_text(pk, stream);
    pack_policy(pk, policy);
    pk.pack_uint64(prev_seq.value());
    pack_digest(pk, prev_hash);
    pk.pack_uint64(history.value());
    pk.pack_uint64(visible.value());
}

void pack_fetch_reply_head(Packer& pk, Epoch epoch, std::string_view stream, std::uint32_t code,
                           std::string_view message, Seq prev_seq, const Digest& prev_hash) {
    pack_head(pk, Type::fetch_reply, 7);
    pk.pack_uint64(epoch.value());
    pack_text(pk, stream);
    pk.pack_uint32(code);
    pack_text(pk, message);
    pk.pack_uint64(prev_seq.value());
    pack_digest(pk, prev_hash);
}

namespace {

struct PeerWriter {
    Packer& pk;

    void operator()(const PeerHello& m) {
        pack_head(pk, Type::peer_hello, 6);
        pk.pack_uint32(m.version);
        pack_text(pk, m.cluster);
        pack_text(pk, m.node_id);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.master);
        pk.pack_uint8(m.fresh ? 1 : 0);
    }
    void operator()(const Heartbeat& m) {
        pack_head(pk, Type::heartbeat, 4);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.master);
        pk.pack_uint8(m.caught_up ? 1 : 0);
        pack_versions(m.versions);
    }
    void pack_versions(const std::vector<TopologyVersion>& versions) {
        pk.pack_array(static_cast<std::uint32_t>(versions.size()));
        for (const TopologyVersion& v : versions) {
            pk.pack_array(3);
            pack_text(pk, v.node);
            pk.pack_uint64(v.instance);
            pk.pack_uint64(v.seq);
        }
    }
    void operator()(const VoteRequest& m) {
        pack_head(pk, Type::vote_request, 3);
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint8(m.pre ? 1 : 0);
        pk.pack_uint8(m.forced ? 1 : 0);
    }
    void operator()(const VoteResponse& m) {
        pack_head(pk, Type::vote_response, 5);
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint8(m.pre ? 1 : 0);
        pk.pack_uint8(m.granted ? 1 : 0);
        pk.pack_uint64(m.known.value());
        pack_versions(m.versions);
    }
    void operator()(const TimeoutNow& m) {
        pack_head(pk, Type::timeout_now, 1);
        pk.pack_uint64(m.epoch.value());
    }
    void operator()(const Visible& m) {
        pack_head(pk, Type::visible, 3);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
    }
    void operator()(const TopologyEvents& m) {
        pack_head(pk, Type::topology_events, 1);
        pk.pack_array(static_cast<std::uint32_t>(m.events.size()));
        for (ByteView e : m.events) pack_bin(pk, e);
    }
    void operator()(const Positions& m) {
        pack_head(pk, Type::positions, 4);
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint8(m.fresh ? 1 : 0);
        pk.pack_array(static_cast<std::uint32_t>(m.streams.size()));
        for (const CopyPosition& c : m.streams) {
            pk.pack_array(10);
            pack_text(pk, c.stream);
            pk.pack_uint64(c.confirmed.value());
            pk.pack_uint64(c.last_seq.value());
            pack_digest(pk, c.last_hash);
            pack_policy(pk, c.policy);
        }
        pk.pack_uint8(m.more ? 1 : 0);
    }
    void operator()(const Replicate& m) {
        pack_replicate_head(pk, m.epoch, m.stream, m.policy, m.prev_seq, m.prev_hash, m.history,
                            m.visible);
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
    }
    void operator()(const ReplicaAck& m) {
        pack_head(pk, Type::replica_ack, 5);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
        pack_digest(pk, m.hash);
        pk.pack_uint64(m.confirmed.value());
    }
    void operator()(const ReplicaRefused& m) {
        pack_head(pk, Type::replica_refused, 7);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
        pk.pack_uint64(m.resume_seq.value());
        pack_digest(pk, m.resume_hash);
    }
    void operator()(const Forward& m) {
        pack_head(pk, Type::forward, 5);
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pack_optional(pk, m.expected_last_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
        pack_events(pk, m.events);
    }
    void operator()(const ForwardAck& m) {
        pack_head(pk, Type::forward_ack, 10);
        pk.pack_uint64(m.epoch.value());
        pack_ack_fields(pk, m.ack);
    }
    void operator()(const ForwardError& m) {
        pack_head(pk, Type::forward_error, 4);
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint64(m.request_id);
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const Probe& m) {
        pack_head(pk, Type::probe, 3);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_array(static_cast<std::uint32_t>(m.seqs.size()));
        for (Seq s : m.seqs) pk.pack_uint64(s.value());
    }
    void operator()(const ProbeReply& m) {
        pack_head(pk, Type::probe_reply, 3);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_array(static_cast<std::uint32_t>(m.hashes.size()));
        for (const SeqHash& h : m.hashes) {
            pk.pack_array(2);
            pk.pack_uint64(h.seq.value());
            pack_optional(pk, h.hash, [&](const Digest& d) { pack_digest(pk, d); });
        }
    }
    void operator()(const Truncate& m) {
        pack_head(pk, Type::truncate, 6);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_uint64(m.after_seq.value());
        pack_digest(pk, m.hash);
        pk.pack_uint8(m.remove ? 1 : 0);
        pk.pack_uint64(m.history.value());
    }
    void operator()(const Fetch& m) {
        pack_head(pk, Type::fetch, 4);
        pk.pack_uint64(m.epoch.value());
        pack_text(pk, m.stream);
        pk.pack_uint64(m.from_seq.value());
        pk.pack_uint64(m.to_seq.value());
    }
    void operator()(const FetchReply& m) {
        pack_fetch_reply_head(pk, m.epoch, m.stream, m.code, m.message, m.prev_seq, m.prev_hash);
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
    }
    template <class Other>
    void operator()(const Other&) {
        SPIRIT_ASSERT_MSG(false, "not a peer message");
    }
};

}  // namespace

void pack_peer_message(Packer& pk, const Message& message) {
    std::visit(PeerWriter{pk}, message);
}

}  // namespace spirit::core::protocol::detail
