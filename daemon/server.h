// daemon/server.h: spiritd's server. Wires the store (storage/), the client
// listeners and connections (net/) and the client protocol (core/protocol):
// publishes, subscriptions with credit-based flow control and durable
// cursors, stream administration, status, and graceful shutdown.
//
// Threads: everything here runs on the loop thread, which is also the
// sequencer (Store::append seals on the calling thread). The store's writer
// thread wakes the loop through an Async after each group commit; the loop
// then drains completions, which send acks and feed subscriptions.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/protocol.h"
#include "daemon/config.h"
#include "daemon/replication.h"
#include "net/connection.h"
#include "net/loop.h"
#include "storage/store.h"

namespace spirit::daemon {

class Server final : public net::ConnectionHandler {
 public:
    // Opens the store and binds the listeners of `config`. REQUIRES: `loop`
    // outlives the server; init_crypto() succeeded.
    [[nodiscard]] static core::Result<std::unique_ptr<Server>> start(const Config& config,
                                                                     net::Loop& loop);
    ~Server() override;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Stops accepting, lets publishes in flight finish and be acknowledged,
    // closes every connection, then stops the loop. Idempotent.
    void shutdown(std::string_view reason);
    bool stopped() const { return stopped_; }

    // Where clients can connect (TCP port 0 in the config becomes the real port).
    std::vector<net::Endpoint> endpoints() const;

    // net::ConnectionHandler
    void on_frame(net::Connection& connection, core::ByteView body) override;
    void on_writable(net::Connection& connection) override;
    void on_frame_error(net::Connection& connection, const core::Error& problem) override;
    void on_closed(net::Connection& connection, const std::optional<core::Error>& why) override;

 private:
    struct Subscription;
    enum class Right { publish, subscribe, admin };
    struct Session {
        std::unique_ptr<net::Connection> connection;
        bool ready = false;  // Hello accepted
        // The rights of the token it presented; nullptr: every right.
        const Config::Client::Grant* grant = nullptr;
        std::uint64_t opened_ms = 0;
        std::uint64_t closing_since_ms = 0;
        std::string client_name;
        std::uint64_t publish_bytes_in_flight = 0;
        std::uint64_t publishes_in_flight = 0;
        bool paused_for_publishes = false;
        bool paused_for_output = false;  // replies queued over the limit: read nothing more
        std::map<std::uint64_t, std::unique_ptr<Subscription>> subscriptions;
    };
    // Where a subscription is in one stream.
    struct StreamCursor {
        core::Seq next_seq{1};  // next to send
        core::Seq acked{0};     // highest ack from the consumer (durable only)
        core::Seq stored{0};    // highest ack written to the store
        bool writing = false;   // a cursor write is in flight
    };
    struct Subscription {
        std::uint64_t connection_id = 0;
        std::uint64_t id = 0;
        std::string target;
        bool pattern = false;
        core::protocol::From from = core::protocol::From::first;
        std::uint64_t from_value = 0;
        std::optional<std::string> durable;
        std::uint64_t credit_events = 0;
        std::uint64_t credit_bytes = 0;
        bool bytes_limited = false;
        std::map<std::string, StreamCursor, std::less<>> streams;
        std::string resume_after;  // round-robin position among streams
        bool queued = false;
    };
    using SubscriptionKey = std::pair<std::uint64_t, std::uint64_t>;  // connection, subscription

    Server(const Config& config, net::Loop& loop, std::unique_ptr<storage::Store> store);
    core::Result<void> listen();

    // Sessions (server_session.cc).
    void accept(std::unique_ptr<net::Connection> connection);
    void handle(Session& session, core::protocol::Message&& message, std::size_t body_bytes);
    void handle_hello(Session& session, const core::protocol::Hello& hello);
    void handle_publish(Session& session, const core::protocol::Publish& publish,
                        std::size_t body_bytes);
    void handle_admin(Session& session, core::protocol::Message&& message);
    // Whether the session's token grants `right` on `target` (a stream name,
    // or for subscribe a name or a pattern; ignored for admin).
    bool may(const Session& session, Right right, std::string_view target) const;
    void reply_error(Session& session, std::optional<std::uint64_t> request_id,
                     const core::Error& error);
    void close_with_error(Session& session, const core::Error& error);
    void send(Session& session, const core::protocol::Message& message);
    // Pauses or resumes reading from a session's connection: paused while its
    // publishes await acks over the limit, or its replies are not read.
    void update_reading(Session& session);
    Session* session_of(std::uint64_t connection_id);
    using PublishReply = std::function<void(core::Result<core::protocol::PublishAck>)>;
    // Orders a publish on this node (its master) and calls `reply`, exactly
    // once (perhaps at once, for a refusal), with the receipt once the
    // stream's redundancy is met.
    void publish_here(std::string_view stream, std::optional<core::Seq> expected,
                      std::span<const core::EventDraft> events, PublishReply reply);
    void publish_completed(std::uint64_t connection_id, std::uint64_t request_id,
                           std::size_t body_bytes, const std::string& stream,
                           core::Result<core::protocol::PublishAck> ack);
    const core::StreamPolicy& policy_of(const std::string& stream);
    void sweep();
    // Trims streams beyond their retention limits (server_retention.cc).
    void apply_retention();
    void drain_store();

    // Subscriptions (server_subscriptions.cc).
    void handle_subscribe(Session& session, core::protocol::Subscribe&& subscribe);
    void handle_credit(Session& session, const core::protocol::Credit& credit);
    void handle_ack(Session& session, const core::protocol::Ack& ack);
    void handle_unsubscribe(Session& session, std::uint64_t subscription_id);
    core::Result<void> add_stream(Subscription& sub, const std::string& stream,
                                  std::vector<core::protocol::StreamPosition>& positions);
    void end_subscription(Session& session, std::uint64_t subscription_id, const core::Error& why);
    void forget_subscription(const Subscription& sub);
    void stream_appended(const std::string& stream, core::Seq last_seq);
    void stream_deleted(const std::string& stream);
    void schedule(Subscription& sub);
    void pump_scheduled();
    void arm_pump();
    void pump(Session& session, Subscription& sub);
    void write_cursor(Subscription& sub, const std::string& stream);
    // visible_[stream], first read from the store.
    core::Seq visible_last(const std::string& stream);

    const Config config_;
    net::Loop& loop_;
    std::unique_ptr<storage::Store> store_;
    std::unique_ptr<Replication> replication_;  // set when the cluster has peers
    std::unordered_map<std::string, core::StreamPolicy> policies_;
    std::unique_ptr<net::Async> store_wakeup_;
    std::unique_ptr<net::Timer> sweep_timer_;
    std::unique_ptr<net::Timer> pump_timer_;
    bool pump_armed_ = false;  // pump_timer_ is started
    std::unique_ptr<net::Timer> retention_timer_;
    std::set<std::string> trims_in_flight_;
    std::vector<std::unique_ptr<net::Listener>> listeners_;
    std::map<std::uint64_t, Session> sessions_;
    std::uint64_t started_ms_ = 0;

    // Subscriptions by stream (live delivery) and pattern subscriptions
    // (matched against streams that appear).
    std::unordered_map<std::string, std::set<SubscriptionKey>> subscribers_;
    std::set<SubscriptionKey> pattern_subscriptions_;
    std::map<std::string, SubscriptionKey, std::less<>> durable_active_;
    std::deque<SubscriptionKey> pump_queue_;
    // Per stream, the last seq consumers may see: committed here, and for an
    // immediate stream on the master also held by enough copies (advanced by
    // Replication's visible hook). Not Replication's committed_, which runs
    // ahead of it for immediate streams.
    std::unordered_map<std::string, core::Seq> visible_;

    std::uint64_t verifies_in_flight_ = 0;  // on the thread pool, using store_
    bool shutting_down_ = false;
    bool stopped_ = false;
    std::uint64_t shutdown_started_ms_ = 0;
};

// "spiritd 0.1.0"
std::string server_version();

}  // namespace spirit::daemon
