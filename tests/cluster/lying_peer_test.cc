// A peer that lies. A fake node-a (tests/cluster/fake_peer.h) claims to be
// the master of a real node-b and sends it what a broken or hostile master
// could: an envelope whose payload does not match its hash, a frame that
// does not continue the copy, data of an older epoch, bytes that are not a
// message. node-b refuses each with a reason, stores nothing that does not
// verify, tells the liar where it can resume or what the current epoch is,
// keeps other streams replicating, and keeps running. A refusal is known to
// both sides and cleared by a frame that continues the copy, and by a new
// link. A frame naming another policy than the slave's record is logged,
// and the record kept. The other way round, a fake slave of a real master
// refuses a stream until the master stops sending it: the master starts it
// over later by itself. A truthful fake master shows two rules a slave
// keeps: its copy is confirmed in the master's epoch only once it holds
// that master's history, and its consumers see an immediate stream no
// further than the master declared. A completing master whose fetch from a
// fake slave goes unanswered asks again after a bound and completes.
#include <catch2/catch.hpp>

#include <thread>

#include <fmt/format.h>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/identity.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/fake_peer.h"
#include "tests/support/bytes.h"

using namespace spirit;
namespace proto = core::protocol;
using Catch::Matchers::Contains;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// node-a's epoch: with two data members, the even epochs are node-a's ballots.
constexpr core::Epoch epoch{8};

std::vector<core::ByteView> views(const std::vector<core::Bytes>& envelopes) {
    std::vector<core::ByteView> out;
    for (const auto& e : envelopes) out.emplace_back(e);
    return out;
}

// Says hello as the master node-a of `epoch` and reads node-b's Positions.
proto::Positions open_as_master(test::FakePeer& peer) {
    peer.send(proto::PeerHello{proto::peer_version, "test", "node-a", epoch, "node-a", false});
    peer.send(proto::Heartbeat{epoch, "node-a", false});
    for (int i = 0; i < 10; ++i) {
        auto m = peer.receive(seconds(5));
        REQUIRE(m);
        if (auto* hello = std::get_if<proto::PeerHello>(&*m)) {
            CHECK(hello->node_id == "node-b");
            continue;
        }
        if (auto* p = std::get_if<proto::Positions>(&*m)) return *p;
    }
    FAIL("node-b sent no Positions");
    return {};
}

template <class T>
T expect(test::FakePeer& peer) {
    auto m = peer.receive(seconds(5));
    REQUIRE(m);
    INFO("got " << proto::type_name(proto::type_of(*m)));
    REQUIRE(std::holds_alternative<T>(*m));
    return std::get<T>(*m);
}

// A real node-b listening on `port` in a cluster with node-a (the fake,
// which dials it), whose configured master is `master`.
// A real node-b in a cluster of two data members, node-a (the fake peer,
// with a key nobody holds) and node-b, whose key file is in `keys`.
test::DaemonOptions node_b(std::uint16_t port, const test::TempDir& keys) {
    const core::Identity b_key = core::Identity::generate();
    const auto key_file = keys.path() / fmt::format("b-{}.key", port);
    REQUIRE(b_key.save(key_file));
    return {.node_id = "node-b",
            .extra_toml =
                fmt::format("[cluster]\nname = \"test\"\nlisten = \"127.0.0.1:{}\"\n"
                            "heartbeat_ms = 100\npeer_timeout_ms = 3000\n"
                            "reconnect_ms_min = 20\nreconnect_ms_max = 2000\n"
                            "[[cluster.members]]\nid = \"node-a\"\naddress = \"127.0.0.1:{}\"\n"
                            "public_key = \"{}\"\n"
                            "[[cluster.members]]\nid = \"node-b\"\naddress = \"127.0.0.1:{}\"\n"
                            "public_key = \"{}\"\n",
                            port, test::free_tcp_port(),
                            core::public_key_text(core::Identity::generate().public_key()), port,
                            core::public_key_text(b_key.public_key())),
            .node_toml = fmt::format("key_file = \"{}\"\n", key_file.string())};
}

// As a slave of the real master node-b: waits for a message of type T,
// sending heartbeats meanwhile so that the link stays up.
template <class T>
T expect_as_slave(test::FakePeer& peer, core::Epoch master_epoch,
                  std::chrono::milliseconds timeout = seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        peer.send(proto::Heartbeat{master_epoch, "node-b", false});
        auto m = peer.receive(milliseconds(100));
        if (!m || std::holds_alternative<proto::PeerHello>(*m)) continue;
        INFO("got " << proto::type_name(proto::type_of(*m)));
        REQUIRE(std::holds_alternative<T>(*m));
        return std::get<T>(*m);
    }
    FAIL("no " << proto::type_name(proto::type_of(proto::Message{T{}})) << " from node-b");
    return {};
}

// The fake node-a says hello (`fresh`: its data dir is new) and votes for
// the real node-b until node-b masters an epoch; returns that epoch.
core::Epoch elect_b(test::FakePeer& peer, bool fresh) {
    peer.grant_votes(true);
    peer.send(proto::PeerHello{proto::peer_version, "test", "node-a", core::Epoch{0}, "", fresh});
    REQUIRE(test::wait_until([&] {
        peer.send(proto::Heartbeat{core::Epoch{0}, "", false});
        (void)peer.receive(milliseconds(100));
        return peer.last_heartbeat() && peer.last_heartbeat()->master == "node-b" &&
               peer.last_heartbeat()->epoch > core::Epoch{0};
    }));
    return peer.last_heartbeat()->epoch;
}

}  // namespace

TEST_CASE("a lying master is refused with reasons and the slave keeps its copy", "[cluster]") {
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::Daemon b(node_b(b_port, keys));
    b.start();
    test::FakePeer peer(b_port);
    const auto positions = open_as_master(peer);
    CHECK(positions.epoch == epoch);
    CHECK(positions.fresh);
    CHECK(positions.streams.empty());

    const core::StreamPolicy policy{};
    core::Digest h4, h5;
    auto good = test::sealed_events("bad", core::Seq{1}, 4, epoch, core::genesis_hash, h4);
    peer.send(proto::Replicate{epoch, "bad", policy, core::Seq{0}, core::genesis_hash, core::Seq{0},
                               core::Seq{0}, views(good)});
    auto ack = expect<proto::ReplicaAck>(peer);
    CHECK(ack.seq == core::Seq{4});
    CHECK(ack.hash == h4);
    CHECK(ack.confirmed == epoch);

    // Seq 5 with a payload byte flipped after sealing.
    auto fifth = test::sealed_events("bad", core::Seq{5}, 1, epoch, h4, h5);
    core::Bytes corrupt = fifth[0];
    corrupt[corrupt.size() - 35] ^= std::byte{1};
    peer.send(proto::Replicate{epoch,
                               "bad",
                               policy,
                               core::Seq{4},
                               h4,
                               core::Seq{0},
                               core::Seq{0},
                               {core::ByteView(corrupt)}});
    auto refused = expect<proto::ReplicaRefused>(peer);
    CHECK(refused.stream == "bad");
    CHECK(refused.seq == core::Seq{5});
    CHECK(refused.code == static_cast<std::uint32_t>(core::errc::hash_mismatch));
    CHECK(refused.resume_seq == core::Seq{4});
    CHECK(refused.resume_hash == h4);
    CHECK(b.client()->stream_info("bad")->last_seq == core::Seq{4});
    auto s = test::status_of(b);
    REQUIRE(s.replication_errors.size() == 1);
    CHECK(s.replication_errors[0].stream == "bad");
    CHECK_THAT(s.replication_errors[0].message, Contains("hash"));

    // Frames sent before the liar heard of the refusal are dropped quietly;
    // other streams go on.
    core::Digest h6;
    auto sixth = test::sealed_events("bad", core::Seq{6}, 1, epoch, h5, h6);
    peer.send(proto::Replicate{epoch, "bad", policy, core::Seq{5}, h5, core::Seq{0}, core::Seq{0},
                               views(sixth)});
    core::Digest g2;
    auto other = test::sealed_events("good", core::Seq{1}, 2, epoch, core::genesis_hash, g2);
    peer.send(proto::Replicate{epoch, "good", policy, core::Seq{0}, core::genesis_hash,
                               core::Seq{0}, core::Seq{0}, views(other)});
    auto good_ack = expect<proto::ReplicaAck>(peer);
    CHECK(good_ack.stream == "good");
    CHECK(good_ack.seq == core::Seq{2});

    // A frame that continues the copy clears the refusal on both sides.
    peer.send(proto::Replicate{epoch, "bad", policy, core::Seq{4}, h4, core::Seq{0}, core::Seq{0},
                               views(fifth)});
    auto resumed = expect<proto::ReplicaAck>(peer);
    CHECK(resumed.seq == core::Seq{5});
    CHECK(test::status_of(b).replication_errors.empty());

    // Data of an older epoch is refused: node-b says which epoch it knows.
    core::Digest old_last;
    auto old = test::sealed_events("bad", core::Seq{6}, 1, core::Epoch{4}, h5, old_last);
    peer.send(proto::Replicate{core::Epoch{4}, "bad", policy, core::Seq{5}, h5, core::Seq{0},
                               core::Seq{0}, views(old)});
    CHECK_FALSE(peer.receive(milliseconds(500)));
    REQUIRE(peer.last_heartbeat());
    CHECK(peer.last_heartbeat()->epoch == epoch);
    CHECK(b.client()->stream_info("bad")->last_seq == core::Seq{5});

    // A refusal, then a new link: the new link starts clean on both sides.
    peer.send(proto::Replicate{epoch,
                               "bad",
                               policy,
                               core::Seq{5},
                               h5,
                               core::Seq{0},
                               core::Seq{0},
                               {core::ByteView(corrupt)}});
    (void)expect<proto::ReplicaRefused>(peer);
    REQUIRE(test::status_of(b).replication_errors.size() == 1);
    {
        test::FakePeer again(b_port);
        const auto p2 = open_as_master(again);
        // Before anything continues the copy: the refusal is gone with the link.
        CHECK(test::status_of(b).replication_errors.empty());
        bool reported = false;
        for (const auto& c : p2.streams) {
            if (c.stream != "bad") continue;
            reported = true;
            CHECK(c.last_seq == core::Seq{5});
            CHECK(c.confirmed == epoch);
        }
        CHECK(reported);
        core::Digest h6b;
        auto next = test::sealed_events("bad", core::Seq{6}, 3, epoch, h5, h6b);
        again.send(proto::Replicate{epoch, "bad", policy, core::Seq{5}, h5, core::Seq{0},
                                    core::Seq{0}, views(next)});
        auto a2 = expect<proto::ReplicaAck>(again);
        CHECK(a2.seq == core::Seq{8});
        CHECK(test::status_of(b).replication_errors.empty());

        // Bytes that are not a message close the link, and nothing else.
        const core::Bytes garbage = {std::byte{0},    std::byte{0},    std::byte{0},   std::byte{3},
                                     std::byte{0xc1}, std::byte{0xc1}, std::byte{0xc1}};
        again.send_bytes(garbage);
        CHECK(again.closed_by_peer(seconds(5)));
    }
    auto client = b.client();
    auto v = client->verify("bad");
    REQUIRE(v);
    CHECK_FALSE(v->break_seq);
    CHECK(v->last_seq == core::Seq{8});
    CHECK(b.running());
}

TEST_CASE("a Replicate naming another policy is logged and the slave's record is kept",
          "[cluster]") {
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::Daemon b(node_b(b_port, keys));
    b.start();
    test::FakePeer peer(b_port);
    (void)open_as_master(peer);
    const core::StreamPolicy eventual{};
    const core::StreamPolicy all{core::Redundancy::immediate, {core::Acks::Kind::all, 0}, {}};
    core::Digest prev;
    auto first = test::sealed_events("pol", core::Seq{1}, 2, epoch, core::genesis_hash, prev);
    peer.send(proto::Replicate{epoch, "pol", eventual, core::Seq{0}, core::genesis_hash,
                               core::Seq{0}, core::Seq{0}, views(first)});
    CHECK(expect<proto::ReplicaAck>(peer).seq == core::Seq{2});
    // Two frames that name another policy: one warning.
    for (std::uint64_t seq = 3; seq <= 4; ++seq) {
        core::Digest last;
        auto next = test::sealed_events("pol", core::Seq{seq}, 1, epoch, prev, last);
        peer.send(proto::Replicate{epoch, "pol", all, core::Seq{seq - 1}, prev, core::Seq{0},
                                   core::Seq{0}, views(next)});
        CHECK(expect<proto::ReplicaAck>(peer).seq == core::Seq{seq});
        prev = last;
    }
    const std::string warning =
        "stream pol: the master node-a replicates it with policy (redundancy immediate, acks "
        "all, retention none), but this copy's record says (redundancy eventual, acks "
        "majority, retention none)";
    REQUIRE(test::wait_until([&] { return b.log().find(warning) != std::string::npos; }));
    const std::string log = b.log();
    CHECK(log.find(warning, log.find(warning) + 1) == std::string::npos);  // once
    CHECK(b.client()->stream_info("pol")->policy == eventual);
}

TEST_CASE("a stream a slave refused three times starts over later", "[cluster]") {
    // The real master is node-b; node-a is a fake slave that refuses the
    // first frames of a stream. After three refusals at one seq the master
    // stops sending it, and starts it over cluster.reconnect_ms_max (2 s)
    // later on the same link (which stays up: nothing would redial it).
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::Daemon b(node_b(b_port, keys));
    b.start();
    test::FakePeer peer(b_port);
    // node-b stands for election and node-a votes for it.
    const core::Epoch e = elect_b(peer, true);
    peer.send(proto::Positions{e, true, {}, false});
    test::wait_serving(b);

    const std::string payload = "refused";
    core::EventDraft draft{test::event_id(1), "t", {}, core::as_bytes(payload)};
    auto published = b.client()->publish("ev", std::span(&draft, 1));
    REQUIRE(published);
    for (int i = 0; i < 3; ++i) {
        auto r = expect_as_slave<proto::Replicate>(peer, e);
        CHECK(r.stream == "ev");
        CHECK(r.prev_seq == core::Seq{0});
        peer.send(proto::ReplicaRefused{e, "ev", core::Seq{1},
                                        static_cast<std::uint32_t>(core::errc::invalid_argument),
                                        "refused by the test", core::Seq{0}, core::genesis_hash});
    }
    REQUIRE(test::wait_until([&] { return !test::status_of(b).replication_errors.empty(); }));
    const auto errors = test::status_of(b).replication_errors;
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0].message, Contains("3 times"));
    // Started over on the same link, from where the copy can continue.
    auto again = expect_as_slave<proto::Replicate>(peer, e, seconds(30));
    CHECK(again.stream == "ev");
    CHECK(again.prev_seq == core::Seq{0});
    REQUIRE(again.envelopes.size() == 1);
    auto envelope = core::decode_envelope(again.envelopes[0]);
    REQUIRE(envelope);
    peer.send(proto::ReplicaAck{e, "ev", core::Seq{1}, envelope->hash, e});
    CHECK(test::wait_until([&] {
        peer.send(proto::Heartbeat{e, "node-b", false});
        return test::status_of(b).replication_errors.empty();
    }));
    CHECK(b.running());
}

TEST_CASE("a slave confirms a master's epoch only once its copy holds that master's history",
          "[cluster]") {
    // The master of epoch 8 completed stream "h" holding seqs 1..5. A copy
    // of 1..3 confirmed in epoch 8 would rank above a copy of 1..5 of an
    // older epoch in the next completion, which would then cut seqs 4..5
    // although they may have been acknowledged (tests/sim seed 230).
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::Daemon b(node_b(b_port, keys));
    b.start();
    const core::StreamPolicy policy{};
    core::Digest h3, h5;
    auto first = test::sealed_events("h", core::Seq{1}, 3, epoch, core::genesis_hash, h3);
    auto rest = test::sealed_events("h", core::Seq{4}, 2, epoch, h3, h5);
    {
        test::FakePeer peer(b_port);
        (void)open_as_master(peer);
        peer.send(proto::Replicate{epoch, "h", policy, core::Seq{0}, core::genesis_hash,
                                   core::Seq{5}, core::Seq{3}, views(first)});
        auto ack = expect<proto::ReplicaAck>(peer);
        CHECK(ack.seq == core::Seq{3});
        CHECK(ack.confirmed == core::Epoch{0});  // a new copy short of the history: none yet
        // An align short of the history is checked but confirms nothing.
        peer.send(
            proto::Replicate{epoch, "h", policy, core::Seq{3}, h3, core::Seq{5}, core::Seq{3}, {}});
        ack = expect<proto::ReplicaAck>(peer);
        CHECK(ack.seq == core::Seq{3});
        CHECK(ack.confirmed == core::Epoch{0});
    }
    // A new link: the copy reports what it holds, not confirmed in epoch 8.
    {
        test::FakePeer peer(b_port);
        const auto positions = open_as_master(peer);
        REQUIRE(positions.streams.size() == 1);
        CHECK(positions.streams[0].last_seq == core::Seq{3});
        CHECK(positions.streams[0].confirmed == core::Epoch{0});
        peer.send(proto::Replicate{epoch, "h", policy, core::Seq{3}, h3, core::Seq{5}, core::Seq{5},
                                   views(rest)});
        auto ack = expect<proto::ReplicaAck>(peer);
        CHECK(ack.seq == core::Seq{5});
        CHECK(ack.confirmed == epoch);  // holds the whole history now
    }
    b.stop();
    b.start();
    test::FakePeer peer(b_port);
    const auto positions = open_as_master(peer);
    REQUIRE(positions.streams.size() == 1);
    CHECK(positions.streams[0].last_seq == core::Seq{5});
    CHECK(positions.streams[0].confirmed == epoch);
}

TEST_CASE("consumers on a slave see an immediate stream only as far as the master declared",
          "[cluster]") {
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::Daemon b(node_b(b_port, keys));
    b.start();
    test::FakePeer peer(b_port);
    (void)open_as_master(peer);
    const core::StreamPolicy immediate{
        core::Redundancy::immediate, {core::Acks::Kind::majority, 0}, {}};
    const core::StreamPolicy eventual{};
    core::Digest i4, i6, e4;
    auto imm = test::sealed_events("imm", core::Seq{1}, 4, epoch, core::genesis_hash, i4);
    auto more = test::sealed_events("imm", core::Seq{5}, 2, epoch, i4, i6);
    auto ev = test::sealed_events("ev", core::Seq{1}, 4, epoch, core::genesis_hash, e4);
    // Four events of each stream; the master declares one of "imm" visible.
    peer.send(proto::Replicate{epoch, "imm", immediate, core::Seq{0}, core::genesis_hash,
                               core::Seq{0}, core::Seq{1}, views(imm)});
    CHECK(expect<proto::ReplicaAck>(peer).seq == core::Seq{4});
    peer.send(proto::Replicate{epoch, "ev", eventual, core::Seq{0}, core::genesis_hash,
                               core::Seq{0}, core::Seq{0}, views(ev)});
    CHECK(expect<proto::ReplicaAck>(peer).seq == core::Seq{4});

    auto consumer = b.client();
    core::Seq imm_seen{0}, ev_seen{0};
    REQUIRE(consumer->subscribe({.target = "imm", .credit_events = 100},
                                [&](const core::EnvelopeView& e) { imm_seen = e.seq; }));
    REQUIRE(consumer->subscribe({.target = "ev", .credit_events = 100},
                                [&](const core::EnvelopeView& e) { ev_seen = e.seq; }));
    auto settle = [&] {
        peer.send(proto::Heartbeat{epoch, "node-a", false});
        REQUIRE(consumer->run_for(milliseconds(300)));
    };
    settle();
    CHECK(ev_seen == core::Seq{4});   // eventual: what this copy holds
    CHECK(imm_seen == core::Seq{1});  // immediate: what the master declared

    peer.send(proto::Visible{epoch, "imm", core::Seq{3}});
    settle();
    CHECK(imm_seen == core::Seq{3});
    // Never beyond what this copy holds, whatever the master declares.
    peer.send(proto::Visible{epoch, "imm", core::Seq{9}});
    settle();
    CHECK(imm_seen == core::Seq{4});
    peer.send(proto::Replicate{epoch, "imm", immediate, core::Seq{4}, i4, core::Seq{0},
                               core::Seq{9}, views(more)});
    CHECK(expect<proto::ReplicaAck>(peer).seq == core::Seq{6});
    settle();
    CHECK(imm_seen == core::Seq{6});
    CHECK(b.running());
}

TEST_CASE("a completing master whose fetch gets no answer asks again and completes", "[cluster]") {
    // The real master is node-b with a new data dir; the fake node-a holds
    // the only copy that counts (3 events) and does not answer the first
    // Fetch. The master does not wait forever: after max(peer_timeout_ms,
    // ack_timeout_ms) (3 s here) it completes over, fetches again, and takes
    // writes once the fake answers.
    const std::uint16_t b_port = test::free_tcp_port();
    test::TempDir keys("spirit-keys");
    test::DaemonOptions options = node_b(b_port, keys);
    options.extra_toml.insert(options.extra_toml.find('\n') + 1, "ack_timeout_ms = 3000\n");
    test::Daemon b(options);
    b.start();
    test::FakePeer peer(b_port);
    const core::Epoch e = elect_b(peer, false);
    core::Digest last;
    const auto events =
        test::sealed_events("held", core::Seq{1}, 3, core::Epoch{1}, core::genesis_hash, last);
    peer.send(proto::Positions{
        e, false, {proto::CopyPosition{"held", core::Epoch{1}, core::Seq{3}, last, {}}}, false});

    const auto first = expect_as_slave<proto::Fetch>(peer, e);
    CHECK(first.stream == "held");
    CHECK(first.from_seq == core::Seq{1});
    CHECK(first.to_seq == core::Seq{3});
    const auto unanswered = std::chrono::steady_clock::now();
    const auto again = expect_as_slave<proto::Fetch>(peer, e, seconds(30));
    CHECK(std::chrono::steady_clock::now() - unanswered >= milliseconds(2500));
    CHECK(again.from_seq == core::Seq{1});
    peer.send(proto::FetchReply{e, "held", 0, "", core::Seq{0}, core::genesis_hash, views(events)});
    test::wait_serving(b);
    auto held = b.client()->stream_info("held");
    REQUIRE(held);
    CHECK(held->last_seq == core::Seq{3});
    CHECK(held->last_hash == last);
    CHECK_THAT(b.log(), Contains("completing again: no progress adopting 1 streams for 3000 ms"));
}
