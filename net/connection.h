// net/connection.h: a framed byte stream over TCP or a Unix socket, and the
// listeners that accept them.
//
// Frames are a 4-byte big-endian length and a body (docs/format.md). A
// Connection reads into one buffer, checks each announced length against
// frame_bytes_max before buffering it, and hands complete bodies to its
// handler. Writes are coalesced: one uv_write in flight, later frames
// gathered behind it, so many small frames cost one system call.
//
// Ownership and lifetime: a Connection is heap-allocated and owned by
// whoever holds its unique_ptr (a listener's owner, a client). close()
// starts libuv's close; the handler's on_closed() runs from the close
// callback, exactly once, and only after it may the owner destroy the
// object. Destroying an open Connection is a bug (asserted). Everything
// runs on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "core/bytes.h"
#include "core/result.h"
#include "net/loop.h"

struct uv_stream_s;
struct uv_write_s;
struct uv_connect_s;

namespace spirit::net {

// Where to listen or connect: TCP host:port, or a Unix socket path.
struct TcpEndpoint {
    std::string host;
    std::uint16_t port = 0;
};
struct UnixEndpoint {
    std::string path;
};
using Endpoint = std::variant<TcpEndpoint, UnixEndpoint>;
std::string describe(const Endpoint& endpoint);

class Connection;

class ConnectionHandler {
 public:
    virtual ~ConnectionHandler() = default;
    // One complete frame body. The view is valid only during the call.
    virtual void on_frame(Connection& connection, core::ByteView body) = 0;
    // The write queue fell to or below the low watermark after being above it.
    virtual void on_writable(Connection& connection) { (void)connection; }
    // The byte stream broke the framing (an announced length over the
    // limit). The default closes the connection with `problem`; a server
    // may send an Error frame first.
    virtual void on_frame_error(Connection& connection, const core::Error& problem);
    // The connection is closed and will deliver nothing more. `why` is the
    // reason it closed (nullopt: closed by our side without error, or EOF).
    virtual void on_closed(Connection& connection, const std::optional<core::Error>& why) = 0;
};

// Takes ownership of a connection its owner is dropping: closes it and
// deletes it from the close callback. For owners going away before their
// connections' close callbacks can run.
void abandon(std::unique_ptr<Connection> connection);

struct ConnectionLimits {
    std::size_t frame_bytes_max = 0;
    // Above this many queued bytes, writable() turns false; on_writable fires
    // when the queue drains below half of it. Sends are never refused: the
    // caller bounds what it queues by watching writable().
    std::size_t queue_bytes_high = 8u << 20;
};

class Connection {
 public:
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Connects; `done` runs on the loop thread with the connection or the
    // error. REQUIRES: `handler` outlives the connection.
    static void connect(Loop& loop, const Endpoint& endpoint, ConnectionHandler& handler,
                        ConnectionLimits limits,
                        std::function<void(core::Result<std::unique_ptr<Connection>>)> done);

    // Queues one complete frame (header included).
    void send(core::ByteView frame);
    void send(core::Bytes&& frame);
    // A place to encode frames directly into the send queue; call commit().
    core::Bytes& send_buffer() { return pending_; }
    void commit_send_buffer();

    std::size_t queued_bytes() const { return in_flight_.size() + pending_.size(); }
    bool writable() const { return queued_bytes() < limits_.queue_bytes_high; }

    // Stops reading (and delivering buffered frames) until resume_reading().
    void pause_reading();
    void resume_reading();

    // Starts closing. Frames already queued are written first when `why` is
    // nullopt or `flush` is set (an Error frame before hanging up).
    enum class Flush { yes, no };
    void close(std::optional<core::Error> why, Flush flush = Flush::yes);
    bool closing() const { return closing_; }
    // Closes at once, dropping unsent frames (a peer that stopped reading).
    void force_close();

    std::uint64_t id() const { return id_; }
    const std::string& peer() const { return peer_; }
    void set_handler(ConnectionHandler& handler) { handler_ = &handler; }

    struct Handle;

 private:
    friend class Listener;
    Connection(Handle* handle, ConnectionHandler& handler, ConnectionLimits limits,
               std::string peer);

    void start_reading();
    void on_read(long nread);
    void deliver_frames();
    void flush();
    enum class Completion { sync, async };
    void on_write_done(int status, Completion completion);
    void finish_close();

    Handle* handle_;  // freed by the close callback
    ConnectionHandler* handler_;
    ConnectionLimits limits_;
    std::uint64_t id_;
    std::string peer_;

    core::Bytes in_;  // received bytes [in_head_, in_.size()) not yet delivered
    std::size_t in_head_ = 0;
    std::size_t in_filled_ = 0;
    bool reading_ = false;
    bool paused_ = false;
    bool delivering_ = false;

    core::Bytes in_flight_;  // owned by the one uv_write in flight
    core::Bytes pending_;    // gathered behind it
    bool write_in_flight_ = false;
    bool above_high_ = false;

    bool closing_ = false;
    bool close_after_flush_ = false;
    std::optional<core::Error> close_reason_;
};

// Accepts connections on one endpoint. A Unix socket path is removed before
// binding (a stale one from a crash) and after closing.
class Listener {
 public:
    using Accepted = std::function<void(std::unique_ptr<Connection>)>;

    // REQUIRES: `handler` (given to every accepted connection) and `loop`
    // outlive the listener.
    static core::Result<std::unique_ptr<Listener>> listen(Loop& loop, const Endpoint& endpoint,
                                                          ConnectionHandler& handler,
                                                          ConnectionLimits limits,
                                                          Accepted accepted);
    ~Listener();  // stops accepting
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // The bound endpoint (TCP port 0 becomes the real port).
    const Endpoint& endpoint() const { return bound_; }

    struct State;

 private:
    Listener() = default;
    State* state_ = nullptr;  // freed by the close callback
    Endpoint bound_;
};

}  // namespace spirit::net
