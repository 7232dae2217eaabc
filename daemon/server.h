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

#include "core/identity.h"
#include "core/protocol.h"
#include "daemon/cluster/cluster.h"
#include "daemon/config.h"
#include "daemon/ops/backup.h"
#include "daemon/ops/operations.h"
#include "daemon/visibility.h"
#include "daemon/write_path.h"
#include "net/connection.h"
#include "net/loop.h"
#include "storage/store.h"

namespace spirit::daemon {

class Server final : public net::ConnectionHandler, public VisibilityListener {
 public:
    // Opens the store and binds the listeners of `config`. REQUIRES: `loop`
    // outlives the server; init_crypto() succeeded.
    // `identity`: the node's key, REQUIRED in a cluster.
    [[nodiscard]] static core::Result<std::unique_ptr<Server>> start(
        const Config& config, net::Loop& loop, std::optional<core::Identity> identity = {});
    ~Server() override;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Stops accepting, lets publishes in flight finish and be acknowledged,
    // closes every connection, then stops the loop. Idempotent.
    void shutdown(std::string_view reason);
    bool stopped() const { return stopped_; }

    // Where clients can connect (TCP port 0 in the config becomes the real port).
    std::vector<net::Endpoint> endpoints() const;
    // Where the metrics listener listens; nullopt when metrics.listen is unset.
    std::optional<std::uint16_t> metrics_port() const { return ops_->http_port(); }

    // net::ConnectionHandler
    void on_frame(net::Connection& connection, core::ByteView body) override;
    void on_writable(net::Connection& connection) override;
    void on_frame_error(net::Connection& connection, const core::Error& problem) override;
    void on_closed(net::Connection& connection, const std::optional<core::Error>& why) override;

    // VisibilityListener: subscriptions learn what they may deliver.
    void stream_visible(const std::string& stream, core::Seq last) override;
    void stream_cut(const std::string& stream, core::Seq seq) override;

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

    Server(const Config& config, net::Loop& loop, std::unique_ptr<storage::Store> store,
           std::optional<core::Identity> identity);
    core::Result<void> listen();

    // Sessions (server_session.cc).
    void accept(std::unique_ptr<net::Connection> connection);
    // Answers a frame that did not decode: a request whose id was read gets
    // an Error (SubscriptionEnded for a subscription's message) and the
    // connection carries on; anything less readable closes it.
    void refuse_frame(Session& session, const core::protocol::DecodeError& problem);
    void handle(Session& session, core::protocol::Message&& message, std::size_t body_bytes);
    void handle_hello(Session& session, const core::protocol::Hello& hello);
    void handle_publish(Session& session, const core::protocol::Publish& publish,
                        std::size_t body_bytes);
    // Starts a publish for a session's request: counted in flight (`bytes`
    // against publish_bytes_in_flight_max) until its ack or error is sent.
    // The request's views need only live until this returns.
    void start_publish(Session& session, std::uint64_t request_id, const PublishRequest& request,
                       std::size_t bytes);
    // Whether the session's token grants `right` on `target` (a stream name,
    // or for subscribe a name or a pattern; ignored for admin).
    bool may(const Session& session, Right right, std::string_view target) const;

    // Administrative requests, one handler each (server_admin.cc).
    // REQUIRES: `message` is one of the requests below.
    void handle_admin(Session& session, core::protocol::Message&& message);
    void handle_status(Session& session, const core::protocol::Status& status);
    void handle_stream_list(Session& session, const core::protocol::StreamList& list);
    void handle_stream_info(Session& session, const core::protocol::StreamInfo& request);
    void handle_stream_create(Session& session, const core::protocol::StreamCreate& create);
    void handle_stream_alter(Session& session, const core::protocol::StreamAlter& alter);
    void handle_stream_delete(Session& session, const core::protocol::StreamDelete& removal);
    void handle_verify(Session& session, const core::protocol::Verify& verify);
    // Admin right; a node alone has no master to name (invalid_argument).
    void handle_cluster_set_master(Session& session,
                                   const core::protocol::ClusterSetMaster& request);
    // List and read need the subscribe right on the stream, republish the
    // publish right; the admin right covers every stream.
    void handle_quarantine_list(Session& session, const core::protocol::QuarantineList& list);
    void quarantine_listed(Session& session, const core::protocol::QuarantineList& list,
                           core::Result<std::vector<storage::QuarantineSummary>> summaries);
    void handle_quarantine_read(Session& session, const core::protocol::QuarantineRead& read);
    void handle_quarantine_republish(Session& session,
                                     const core::protocol::QuarantineRepublish& request);
    // Operations (server_ops.cc): a hot backup streamed to the session
    // (admin right, one at a time); what the metrics, readiness and status
    // sample from the server's state.
    void handle_backup(Session& session, const core::protocol::Backup& backup);
    // spirit topology: what this node knows of its cluster (any session;
    // positions only of streams it may subscribe to).
    void handle_topology(Session& session, const core::protocol::Topology& request);
    void collect_operations(ops::Sample& sample, ops::HealthInputs& health);
    void fill_operations_status(core::protocol::StatusReply& reply) const;
    // Answers unauthorized if the session may not change streams; true then.
    bool refuse_stream_change(Session& session, std::uint64_t request_id);
    bool may_on_quarantine(const Session& session, Right right, std::string_view stream) const;
    // Sends Done, or the error, for `request_id` if the session still exists.
    std::function<void(core::Result<void>)> done_reply(const Session& session,
                                                       std::uint64_t request_id);
    // Sends an Error. A not_master or unavailable error names the master
    // this node knows (naming_master), or says that it knows none.
    void reply_error(Session& session, std::optional<std::uint64_t> request_id,
                     const core::Error& error);
    std::string naming_master(const core::Error& error) const;
    void close_with_error(Session& session, const core::Error& error);
    void send(Session& session, const core::protocol::Message& message);
    // Pauses or resumes reading from a session's connection: paused while its
    // publishes await acks over the limit, or its replies are not read.
    void update_reading(Session& session);
    Session* session_of(std::uint64_t connection_id);
    void publish_completed(std::uint64_t connection_id, std::uint64_t request_id,
                           std::size_t body_bytes, const std::string& stream,
                           core::Result<core::protocol::PublishAck> ack);
    void sweep();
    // Trims streams beyond their retention limits (server_retention.cc).
    void apply_retention();
    void drain_store();

    // Subscriptions (server_subscriptions.cc).
    void handle_subscribe(Session& session, core::protocol::Subscribe&& subscribe);
    // Whether the session may open `subscribe` (ids, limits, names, rights).
    core::Result<void> check_subscribe(const Session& session,
                                       const core::protocol::Subscribe& subscribe) const;
    // Adds the subscription's stream, or every stream its pattern matches.
    core::Result<void> add_streams(Subscription& sub,
                                   std::vector<core::protocol::StreamPosition>& positions);
    void handle_credit(Session& session, const core::protocol::Credit& credit);
    void handle_ack(Session& session, const core::protocol::Ack& ack);
    void handle_unsubscribe(Session& session, std::uint64_t subscription_id);
    core::Result<void> add_stream(Subscription& sub, const std::string& stream,
                                  std::vector<core::protocol::StreamPosition>& positions);
    void end_subscription(Session& session, std::uint64_t subscription_id, const core::Error& why);
    void forget_subscription(const Subscription& sub);
    void stream_deleted(const std::string& stream);
    void schedule(Subscription& sub);
    void pump_scheduled();
    void arm_pump();
    void pump(Session& session, Subscription& sub);
    void write_cursor(Subscription& sub, const std::string& stream);
    // Stores a durable consumer's position, and remembers it until the write
    // is done, so that a consumer that resumes meanwhile starts after it.
    core::Result<void> store_cursor(const std::string& consumer, const std::string& stream,
                                    core::Seq seq, storage::DoneCallback done);

    const Config config_;
    net::Loop& loop_;
    std::unique_ptr<storage::Store> store_;
    Visibility visibility_;
    std::optional<core::Identity> identity_;  // set in a cluster
    std::unique_ptr<Cluster> cluster_;        // set in a cluster
    std::unique_ptr<WritePath> write_path_;
    std::unique_ptr<ops::Operations> ops_;
    std::unique_ptr<ops::BackupJob> backup_;  // the backup running, or the last one
    std::uint64_t backup_connection_ = 0;     // the session it streams to
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
    // Durable positions written and not yet committed: (consumer, stream).
    struct CursorWrite {
        core::Seq highest{0};
        std::uint32_t in_flight = 0;
    };
    std::map<std::pair<std::string, std::string>, CursorWrite> cursor_writes_;
    std::deque<SubscriptionKey> pump_queue_;

    // Verifies and quarantine listings on the thread pool, using store_.
    std::uint64_t store_reads_in_flight_ = 0;
    bool shutting_down_ = false;
    bool stopped_ = false;
    std::uint64_t shutdown_started_ms_ = 0;
};

// "spiritd 0.1.0"
std::string server_version();

}  // namespace spirit::daemon
