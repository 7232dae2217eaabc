// net/client.h: the C++ client library for spiritd (the CLI and the tests
// use it).
//
// A Client owns one connection and its own event loop, and is used from one
// thread. Nothing happens in the background: the loop runs inside the
// client's calls (publish, run_for, run_until, the admin calls), and event
// handlers and publish callbacks run there too.
//
// Publishing: publish() waits for the ack. publish_async() queues events
// and returns; queued publishes to the same stream (without an expected
// seq) are sent together in one Publish frame the next time the loop runs,
// and each caller gets its own receipt. Acknowledged means durable on the
// daemon (see PublishReceipt::kind).
//
// Subscribing: the client grants credit and tops it up as the handler
// consumes events; it verifies each event's chain hash against the previous
// one (from the hash the daemon gives for the start position); a durable
// subscription acks each delivered batch after the handler returned.
//
// Signals: the first connect ignores SIGPIPE if its handler is the default,
// so a write to a closed connection is an error instead of killing the process.
//
// Reconnecting: when the connection drops, publishes in flight fail with
// errc::connection_lost (retry them with the same event ids and the daemon
// stores each event once); the client reconnects with backoff and resumes
// every subscription where it was: durable ones from the daemon's cursor,
// others from the next seq they expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/protocol.h"
#include "net/connection.h"
#include "net/loop.h"

namespace spirit::net {

struct ClientOptions {
    Endpoint endpoint = TcpEndpoint{"127.0.0.1", 7700};
    std::string client_name = "spirit-client";
    std::optional<std::string> token;
    std::uint32_t connect_timeout_ms = 5000;
    std::uint32_t request_timeout_ms = 30'000;
    bool reconnect = true;
    std::uint32_t reconnect_delay_ms_min = 50;
    std::uint32_t reconnect_delay_ms_max = 2000;
    // Queued publishes to one stream are sent in one frame up to these
    // bounds (a single larger publish call still goes alone).
    std::size_t publish_batch_events_max = 1024;
    std::size_t publish_batch_bytes_max = 1u << 20;
};

struct PublishOptions {
    // The stream's last seq must be this, or the publish fails with
    // expected_seq_mismatch. Such a publish is never batched with others.
    std::optional<core::Seq> expected_last_seq;
};

// The daemon's receipt for one publish call.
struct PublishReceipt {
    core::protocol::AckKind kind = core::protocol::AckKind::durable;
    core::Seq first_seq;  // Seq{0} when every event was a duplicate, or kind is accepted
    core::Seq last_seq;   // Seq{0} when first_seq is
    core::Epoch epoch;
    core::TimestampNs timestamp_ns;
    std::vector<core::protocol::Duplicate> duplicates;  // indexes into this call's events
    std::vector<std::string> holders;
};

using PublishCallback = std::function<void(core::Result<PublishReceipt>)>;

// One page of a stream's quarantine (Client::quarantine_read).
struct QuarantineEntries {
    // Decoded and owned, in (seq, epoch, hash) order: each as it was stored
    // in the stream before it was moved out (its seq, epoch, id, type,
    // metadata, payload, timestamp and chain hash).
    std::vector<core::Envelope> entries;
    // Set when more entries may follow: where to read on.
    std::optional<core::protocol::QuarantinePosition> next;
};

// A quarantined event to republish: its seq, and its epoch when the seq is
// quarantined in several (nullopt: the only one at that seq).
using QuarantineRef = std::pair<core::Seq, std::optional<core::Epoch>>;

struct SubscribeOptions {
    std::string target;  // a stream, or a pattern ("orders.*", "orders.>")
    core::protocol::From from = core::protocol::From::first;
    std::uint64_t from_value = 0;  // the seq (From::seq) or timestamp in ns (From::time)
    std::optional<std::string> durable;
    std::uint64_t credit_events = 1024;  // window of events in flight to this client
    std::uint64_t credit_bytes = 0;      // 0: no byte window
    bool verify = true;                  // check every event's chain hash
};

using EventHandler = std::function<void(const core::EnvelopeView& event)>;

class Client;

class Subscription {
 public:
    std::uint64_t id() const { return id_; }
    const SubscribeOptions& options() const { return options_; }
    // Set when the subscription ended: refused, the stream was deleted, a
    // hash did not verify, or unsubscribed (errc 0 detail "unsubscribed").
    const std::optional<core::Error>& ended() const { return ended_; }
    std::uint64_t delivered() const { return delivered_; }
    // Next seq expected per stream.
    std::map<std::string, core::Seq> positions() const;

 private:
    friend class Client;
    struct StreamState {
        core::Seq next_seq{1};
        core::Digest prev_hash;
        core::TimestampNs last_ts{0};
        core::Seq ack_pending{0};
    };
    std::uint64_t id_ = 0;
    SubscribeOptions options_;
    EventHandler handler_;
    std::map<std::string, StreamState, std::less<>> streams_;
    std::uint64_t consumed_since_credit_ = 0;
    std::uint64_t delivered_ = 0;
    bool confirmed_ = false;
    std::optional<core::Error> ended_;
    core::TimestampNs started_ns_{0};
};

class Client final : public ConnectionHandler {
 public:
    // Connects and says Hello; fails if that does not finish within
    // connect_timeout_ms.
    [[nodiscard]] static core::Result<std::unique_ptr<Client>> connect(ClientOptions options);
    ~Client() override;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const core::protocol::Welcome& welcome() const { return welcome_; }

    // Publishes and waits for the receipt.
    [[nodiscard]] core::Result<PublishReceipt> publish(std::string_view stream,
                                                       std::span<const core::EventDraft> events,
                                                       const PublishOptions& options = {});
    // Queues a publish (the events are copied); `done` runs from a later
    // client call. REQUIRES: 1 <= events.size() <= the daemon's batch limit.
    void publish_async(std::string_view stream, std::span<const core::EventDraft> events,
                       const PublishOptions& options, PublishCallback done);
    std::size_t publishes_in_flight() const { return publish_callbacks_; }
    // Runs until every queued publish has its receipt.
    [[nodiscard]] core::Result<void> flush(std::chrono::milliseconds timeout);

    // Subscribes and waits for the daemon to confirm the start positions.
    // The returned object lives until the client does.
    [[nodiscard]] core::Result<Subscription*> subscribe(SubscribeOptions options,
                                                        EventHandler handler);
    [[nodiscard]] core::Result<void> unsubscribe(Subscription& subscription);

    // Runs the loop for `duration`, or until `done()` (checked after each
    // turn), delivering events and receipts. Errors: timeout (run_until),
    // connection_lost when reconnecting is off and the connection is gone.
    [[nodiscard]] core::Result<void> run_for(std::chrono::milliseconds duration);
    // One turn of the loop without blocking: sends what is queued and
    // handles whatever has arrived.
    [[nodiscard]] core::Result<void> poll();
    [[nodiscard]] core::Result<void> run_until(const std::function<bool()>& done,
                                               std::chrono::milliseconds timeout);

    [[nodiscard]] core::Result<core::protocol::StatusReply> status();
    // What the daemon knows of its cluster: members, reachability, masters,
    // copies' positions and `$topology` (every node answers; a node alone
    // as its own master).
    [[nodiscard]] core::Result<core::protocol::TopologyReply> topology();
    [[nodiscard]] core::Result<std::vector<core::protocol::StreamDescription>> streams();
    [[nodiscard]] core::Result<core::protocol::StreamDescription> stream_info(
        std::string_view stream);
    [[nodiscard]] core::Result<void> create_stream(std::string_view stream,
                                                   const core::StreamPolicy& policy);
    [[nodiscard]] core::Result<void> delete_stream(std::string_view stream);
    // Gives a stream `policy`; only its retention may change.
    [[nodiscard]] core::Result<void> alter_stream(std::string_view stream,
                                                  const core::StreamPolicy& policy);
    [[nodiscard]] core::Result<core::protocol::VerifyReply> verify(std::string_view stream);

    // Names `node` the master of the next epoch (needs the admin right);
    // returns once the daemon recorded it. invalid_argument on a node that
    // is not in a cluster, or for a node not in it.
    // `force`: also a node that has not caught up since its data dir was made.
    [[nodiscard]] core::Result<void> set_master(std::string_view node, bool force = false);

    // The quarantine: events removed from the end of a stream's copy (a
    // divergent suffix), kept for operators (docs/operations.md). Reading
    // needs the subscribe right on the stream, republishing the publish
    // right; the admin right covers every stream.
    //
    // What it holds for `stream`, or for every stream the token may read ("").
    [[nodiscard]] core::Result<core::protocol::QuarantineListReply> quarantine_list(
        std::string_view stream);
    // A page of `stream`'s quarantined events whose seq is above
    // `after_seq` (Seq{0}: from the first), at most `limit` (0: the daemon's
    // page, 1000 events or about 1 MiB). An unknown stream gives an empty page.
    [[nodiscard]] core::Result<QuarantineEntries> quarantine_read(std::string_view stream,
                                                                  core::Seq after_seq,
                                                                  std::size_t limit);
    // The page after `after` (a page's `next`).
    [[nodiscard]] core::Result<QuarantineEntries> quarantine_read(
        std::string_view stream, const core::protocol::QuarantinePosition& after,
        std::size_t limit);
    // Publishes quarantined events of `stream` as new events of it, in the
    // order given: the same ids, types, metadata and payloads, new seqs. The
    // daemon reads them from its quarantine, so the ids make a repeat a
    // duplicate. An entry without an epoch is looked up first: not_found if
    // no event is quarantined at its seq, invalid_argument naming the
    // epochs if several are. The daemon answers not_found for an entry that
    // is not in the quarantine. REQUIRES: 1 <= entries.size().
    [[nodiscard]] core::Result<PublishReceipt> quarantine_republish(
        std::string_view stream, std::vector<QuarantineRef> entries);

    // A hot backup (needs the admin right; net/client_backup.cc): asks the
    // daemon for a consistent copy of its store and hands each piece to
    // `sink` in order, as it arrives (the chunk's data is valid only during
    // the call); returns the daemon's BackupDone once every piece was
    // handed over. An error from `sink` stops the backup: the connection is
    // closed (so the daemon stops copying) and the error returned. Errors:
    // the daemon's (unauthorized, busy while another backup runs, the copy's
    // I/O errors), connection_lost, timeout when no piece arrives within
    // request_timeout_ms.
    using BackupSink = std::function<core::Result<void>(const core::protocol::BackupChunk&)>;
    [[nodiscard]] core::Result<core::protocol::BackupDone> backup(const BackupSink& sink);

    bool connected() const { return connection_ != nullptr && ready_; }

    // The client's event loop, for handles whose callbacks should run
    // inside the client's calls, like an Async that a thread reading input
    // sends to wake a run_until(). Destroy such handles before the client.
    Loop& loop() { return loop_; }
    std::uint64_t reconnects() const { return reconnects_; }

    // ConnectionHandler
    void on_frame(Connection& connection, core::ByteView body) override;
    void on_closed(Connection& connection, const std::optional<core::Error>& why) override;

 private:
    struct Part {
        std::size_t events;
        PublishCallback done;
    };
    struct Outgoing {
        std::string stream;
        std::optional<core::Seq> expected;
        core::protocol::PublishEvents events;
        std::vector<Part> parts;
        std::size_t bytes = 0;
    };
    struct InFlight {
        std::vector<Part> parts;
        std::size_t events = 0;
    };

    explicit Client(ClientOptions options);
    core::Result<void> open_connection();
    void say_hello();
    void send(const core::protocol::Message& message);
    void send_outgoing();
    void complete_publish(std::uint64_t request_id, core::Result<core::protocol::PublishAck> ack);
    void handle(core::protocol::Message&& message);
    void deliver(Subscription& sub, const core::protocol::Events& events);
    void resubscribe(Subscription& sub);
    void end(Subscription& sub, core::Error why);
    void lost(const core::Error& why);
    void schedule_reconnect();
    core::Result<core::protocol::Message> request(core::protocol::Message message,
                                                  std::uint64_t request_id);
    core::Result<void> turn(std::chrono::steady_clock::time_point deadline);
    core::Result<QuarantineEntries> read_quarantine(core::protocol::QuarantineRead request);
    // The epochs in which `seq` of `stream` is quarantined, ascending.
    core::Result<std::vector<core::Epoch>> quarantined_epochs(std::string_view stream,
                                                              core::Seq seq);

    ClientOptions options_;
    Loop loop_;
    // Bounds each blocking loop turn; one timer re-armed, never recreated (a
    // handle closing every turn would keep the loop from ever blocking).
    std::unique_ptr<Timer> turn_timer_;
    std::unique_ptr<Connection> connection_;
    bool ready_ = false;  // Welcome received
    core::protocol::Welcome welcome_;
    std::optional<core::Error> connection_error_;
    std::uint64_t next_request_id_ = 1;
    std::uint64_t reconnects_ = 0;
    std::uint32_t reconnect_delay_ms_ = 0;
    std::unique_ptr<Timer> reconnect_timer_;
    bool reconnecting_ = false;

    std::deque<Outgoing> outgoing_;
    std::map<std::uint64_t, InFlight> in_flight_;
    std::size_t publish_callbacks_ = 0;
    std::map<std::uint64_t, std::optional<core::Result<core::protocol::Message>>> replies_;
    // The envelopes of a QuarantineReadReply in replies_, by request id.
    std::map<std::uint64_t, std::vector<core::Bytes>> envelope_copies_;
    std::map<std::uint64_t, std::unique_ptr<Subscription>> subscriptions_;
    std::uint64_t next_subscription_id_ = 1;
    // The backup in progress (its request id, where its pieces go, what
    // arrived, and the first error of the sink).
    struct BackupState {
        std::uint64_t request_id = 0;
        const BackupSink* sink = nullptr;
        std::uint64_t chunks = 0;
        std::optional<core::Error> sink_error;
    };
    std::optional<BackupState> backup_;
    void on_backup_chunk(const core::protocol::BackupChunk& chunk);
};

// Parses "host:port", "[v6]:port" or "unix:PATH" into an Endpoint.
[[nodiscard]] core::Result<Endpoint> parse_endpoint(std::string_view text);

}  // namespace spirit::net
