#include "net/connection.h"

#include <uv.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "net/uv_error.h"

namespace spirit::net {
namespace {

constexpr std::size_t read_chunk_bytes = 64u << 10;

std::atomic<std::uint64_t> next_connection_id{1};

std::string peer_name(uv_stream_t* stream) {
    if (stream->type == UV_NAMED_PIPE) return "unix";
    sockaddr_storage addr{};
    int len = sizeof addr;
    if (uv_tcp_getpeername(reinterpret_cast<uv_tcp_t*>(stream), reinterpret_cast<sockaddr*>(&addr),
                           &len) != 0) {
        return "tcp";
    }
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (addr.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&addr);
        uv_ip4_name(a, host, sizeof host);
        port = ntohs(a->sin_port);
        return fmt::format("{}:{}", host, port);
    }
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
    return fmt::format("[{}]:{}", host, port);
}

core::Result<sockaddr_storage> resolve(const TcpEndpoint& e) {
    sockaddr_storage addr{};
    std::string host = e.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (uv_ip4_addr(host.c_str(), e.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) return addr;
    if (uv_ip6_addr(host.c_str(), e.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) return addr;
    // A name: resolve synchronously (start-up and client connects only).
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_getaddrinfo_t req;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const std::string port = std::to_string(e.port);
    int rc = uv_getaddrinfo(&loop, &req, nullptr, host.c_str(), port.c_str(), &hints);
    uv_loop_close(&loop);
    if (rc != 0) return core::Unexpected{uv_error(rc, fmt::format("resolving {}", e.host))};
    std::memcpy(&addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    return addr;
}

bool unix_socket_in_use(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

}  // namespace

std::string describe(const Endpoint& endpoint) {
    if (const auto* t = std::get_if<TcpEndpoint>(&endpoint)) {
        return fmt::format("{}:{}", t->host, t->port);
    }
    return "unix:" + std::get<UnixEndpoint>(endpoint).path;
}

void ConnectionHandler::on_frame_error(Connection& connection, const core::Error& problem) {
    connection.close(problem, Connection::Flush::no);
}

// The libuv stream and the one write request in flight. Lives until the
// stream's close callback, which may outlive the Connection object.
struct Connection::Handle {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
        uv_stream_t stream;
    };
    uv_write_t write;
    Connection* owner = nullptr;
    std::function<void(core::Result<std::unique_ptr<Connection>>)> connected;
    Loop* loop = nullptr;
    ConnectionHandler* handler = nullptr;
    ConnectionLimits limits;
    uv_connect_t connect;
};

Connection::Connection(Handle* handle, ConnectionHandler& handler, ConnectionLimits limits,
                       std::string peer)
    : handle_(handle),
      handler_(&handler),
      limits_(limits),
      id_(next_connection_id.fetch_add(1)),
      peer_(std::move(peer)) {
    handle_->owner = this;
    handle_->handle.data = handle_;
    handle_->write.data = handle_;
}

Connection::~Connection() {
    SPIRIT_ASSERT_MSG(handle_ == nullptr, "a Connection was destroyed before on_closed");
}

void Connection::start_reading() {
    if (reading_ || closing_) return;
    int rc = uv_read_start(
        &handle_->stream,
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* c = static_cast<Handle*>(h->data)->owner;
            // Compact, then make sure a chunk fits after the buffered bytes.
            if (c->in_head_ > 0) {
                std::memmove(c->in_.data(), c->in_.data() + c->in_head_,
                             c->in_filled_ - c->in_head_);
                c->in_filled_ -= c->in_head_;
                c->in_head_ = 0;
            }
            if (c->in_.size() < c->in_filled_ + read_chunk_bytes) {
                c->in_.resize(c->in_filled_ + read_chunk_bytes);
            }
            buf->base = reinterpret_cast<char*>(c->in_.data() + c->in_filled_);
            buf->len = c->in_.size() - c->in_filled_;
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
            static_cast<Handle*>(s->data)->owner->on_read(static_cast<long>(nread));
        });
    if (rc != 0) {
        close(uv_error(rc, "starting to read"), Flush::no);
        return;
    }
    reading_ = true;
}

void Connection::on_read(long nread) {
    if (nread > 0) {
        in_filled_ += static_cast<std::size_t>(nread);
        deliver_frames();
        return;
    }
    if (nread == 0) return;  // EAGAIN
    if (nread == UV_EOF) {
        close(std::nullopt, Flush::no);
        return;
    }
    close(uv_error(static_cast<int>(nread), "reading"), Flush::no);
}

void Connection::deliver_frames() {
    if (delivering_) return;  // resume_reading() from inside on_frame
    delivering_ = true;
    while (!paused_ && !closing_) {
        const std::size_t available = in_filled_ - in_head_;
        if (available < core::frame_header_bytes) break;
        auto length = core::decode_frame_header(core::ByteView(in_.data() + in_head_, 4),
                                                limits_.frame_bytes_max);
        if (!length) {
            if (reading_) {
                uv_read_stop(&handle_->stream);
                reading_ = false;
            }
            delivering_ = false;
            handler_->on_frame_error(*this, length.error());
            return;
        }
        const std::size_t frame = core::frame_header_bytes + *length;
        if (available < frame) {
            // Room for the whole frame (bounded by frame_bytes_max).
            if (in_.size() < in_head_ + frame) in_.resize(in_head_ + frame);
            break;
        }
        core::ByteView body(in_.data() + in_head_ + core::frame_header_bytes, *length);
        in_head_ += frame;
        handler_->on_frame(*this, body);
    }
    if (in_head_ == in_filled_) in_head_ = in_filled_ = 0;
    delivering_ = false;
}

void Connection::pause_reading() {
    if (paused_) return;
    paused_ = true;
    if (reading_) {
        uv_read_stop(&handle_->stream);
        reading_ = false;
    }
}

void Connection::resume_reading() {
    if (!paused_ || closing_) return;
    paused_ = false;
    start_reading();
    deliver_frames();
}

void Connection::send(core::ByteView frame) {
    if (closing_ && !close_after_flush_) return;
    core::append(pending_, frame);
    commit_send_buffer();
}

void Connection::send(core::Bytes&& frame) {
    if (closing_ && !close_after_flush_) return;
    if (pending_.empty()) {
        pending_ = std::move(frame);
    } else {
        core::append(pending_, frame);
    }
    commit_send_buffer();
}

void Connection::commit_send_buffer() {
    if (queued_bytes() >= limits_.queue_bytes_high) above_high_ = true;
    flush();
}

void Connection::flush() {
    if (write_in_flight_ || pending_.empty() || handle_ == nullptr) return;
    std::swap(in_flight_, pending_);
    pending_.clear();
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(in_flight_.data()),
                               static_cast<unsigned>(in_flight_.size()));
    // Most writes complete at once: try first, queue only the rest.
    int written = uv_try_write(&handle_->stream, &buf, 1);
    if (written == static_cast<int>(in_flight_.size())) {
        on_write_done(0, Completion::sync);
        if (above_high_ && queued_bytes() < limits_.queue_bytes_high) above_high_ = false;
        return;
    }
    if (written < 0 && written != UV_EAGAIN) {
        in_flight_.clear();
        close(uv_error(written, "writing"), Flush::no);
        return;
    }
    if (written > 0) {
        in_flight_.erase(in_flight_.begin(), in_flight_.begin() + written);
        buf = uv_buf_init(reinterpret_cast<char*>(in_flight_.data()),
                          static_cast<unsigned>(in_flight_.size()));
    }
    int rc = uv_write(&handle_->write, &handle_->stream, &buf, 1, [](uv_write_t* req, int status) {
        auto* h = static_cast<Handle*>(req->data);
        if (h->owner != nullptr) h->owner->on_write_done(status, Completion::async);
    });
    if (rc != 0) {
        in_flight_.clear();
        close(uv_error(rc, "writing"), Flush::no);
        return;
    }
    write_in_flight_ = true;
}

void Connection::on_write_done(int status, Completion completion) {
    write_in_flight_ = false;
    in_flight_.clear();
    if (status < 0) {
        pending_.clear();
        if (close_after_flush_) {
            close_after_flush_ = false;
            finish_close();
        } else if (!closing_) {
            close(uv_error(status, "writing"), Flush::no);
        }
        return;
    }
    if (closing_) {
        if (close_after_flush_ && pending_.empty()) {
            close_after_flush_ = false;
            finish_close();
        } else if (close_after_flush_) {
            flush();
        }
        return;
    }
    // Only an asynchronous completion notifies: a synchronous one happens
    // inside send(), whose caller sees writable() itself, and notifying
    // there could recurse without bound.
    if (completion == Completion::async && above_high_ &&
        queued_bytes() <= limits_.queue_bytes_high / 2) {
        above_high_ = false;
        handler_->on_writable(*this);
        if (handle_ == nullptr || closing_) return;
    }
    flush();
}

void Connection::close(std::optional<core::Error> why, Flush flush_first) {
    if (closing_ || handle_ == nullptr) return;
    closing_ = true;
    close_reason_ = std::move(why);
    if (reading_) {
        uv_read_stop(&handle_->stream);
        reading_ = false;
    }
    if (flush_first == Flush::yes && queued_bytes() > 0) {
        close_after_flush_ = true;
        flush();
        if (close_after_flush_ && !write_in_flight_ && pending_.empty()) {
            close_after_flush_ = false;
            finish_close();
        }
        return;
    }
    finish_close();
}

void Connection::force_close() {
    if (handle_ == nullptr) return;
    if (!closing_) {
        close(std::nullopt, Flush::no);
        return;
    }
    if (close_after_flush_) {
        close_after_flush_ = false;
        finish_close();
    }
}

void Connection::finish_close() {
    if (handle_ == nullptr || uv_is_closing(&handle_->handle)) return;
    uv_close(&handle_->handle, [](uv_handle_t* h) {
        auto* handle = static_cast<Handle*>(h->data);
        Connection* c = handle->owner;
        if (c != nullptr) {
            c->handle_ = nullptr;
            handle->owner = nullptr;
            // May destroy the connection: touch nothing of it afterwards.
            c->handler_->on_closed(*c, c->close_reason_);
        }
        delete handle;
    });
}

void Connection::connect(Loop& loop, const Endpoint& endpoint, ConnectionHandler& handler,
                         ConnectionLimits limits,
                         std::function<void(core::Result<std::unique_ptr<Connection>>)> done) {
    auto* h = new Handle{};
    h->handle.data = h;
    h->connect.data = h;
    h->connected = std::move(done);
    h->loop = &loop;
    h->handler = &handler;
    h->limits = limits;
    auto on_connect = [](uv_connect_t* req, int status) {
        auto* handle = static_cast<Handle*>(req->data);
        auto done_cb = std::move(handle->connected);
        if (status < 0) {
            uv_close(&handle->handle, [](uv_handle_t* x) { delete static_cast<Handle*>(x->data); });
            done_cb(core::Unexpected{uv_error(status, "connecting")});
            return;
        }
        if (handle->stream.type == UV_TCP) uv_tcp_nodelay(&handle->tcp, 1);
        std::unique_ptr<Connection> c(
            new Connection(handle, *handle->handler, handle->limits, peer_name(&handle->stream)));
        c->start_reading();
        done_cb(std::move(c));
    };
    int rc = 0;
    if (const auto* t = std::get_if<TcpEndpoint>(&endpoint)) {
        auto addr = resolve(*t);
        if (!addr) {
            delete h;
            done(core::Unexpected{addr.error()});
            return;
        }
        uv_tcp_init(loop.get(), &h->tcp);
        rc = uv_tcp_connect(&h->connect, &h->tcp, reinterpret_cast<const sockaddr*>(&*addr),
                            on_connect);
    } else {
        uv_pipe_init(loop.get(), &h->pipe, 0);
        uv_pipe_connect(&h->connect, &h->pipe, std::get<UnixEndpoint>(endpoint).path.c_str(),
                        on_connect);
    }
    if (rc != 0) {
        auto done_cb = std::move(h->connected);
        uv_close(&h->handle, [](uv_handle_t* x) { delete static_cast<Handle*>(x->data); });
        done_cb(core::Unexpected{uv_error(rc, "connecting to " + describe(endpoint))});
    }
}

namespace {

class Orphanage final : public ConnectionHandler {
 public:
    void on_frame(Connection&, core::ByteView) override {}
    void on_frame_error(Connection&, const core::Error&) override {}
    void on_closed(Connection& c, const std::optional<core::Error>&) override { delete &c; }
};

Orphanage orphanage;

}  // namespace

void abandon(std::unique_ptr<Connection> connection) {
    connection->set_handler(orphanage);
    if (!connection->closing()) connection->close(std::nullopt, Connection::Flush::no);
    connection->force_close();
    (void)connection.release();  // deleted by Orphanage::on_closed
}

// --- Listener ---

struct Listener::State {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
        uv_stream_t stream;
    };
    Loop* loop = nullptr;
    ConnectionHandler* handler = nullptr;
    ConnectionLimits limits;
    Accepted accepted;
    std::string unix_path;
    bool tcp_kind = true;
};

core::Result<std::unique_ptr<Listener>> Listener::listen(Loop& loop, const Endpoint& endpoint,
                                                         ConnectionHandler& handler,
                                                         ConnectionLimits limits,
                                                         Accepted accepted) {
    auto* s = new State{};
    s->loop = &loop;
    s->handler = &handler;
    s->limits = limits;
    s->accepted = std::move(accepted);
    s->handle.data = s;
    auto fail = [&](int rc, std::string what) -> core::Result<std::unique_ptr<Listener>> {
        uv_close(&s->handle, [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
        return core::Unexpected{uv_error(rc, what)};
    };
    std::unique_ptr<Listener> listener(new Listener());
    if (const auto* t = std::get_if<TcpEndpoint>(&endpoint)) {
        uv_tcp_init(loop.get(), &s->tcp);
        s->handle.data = s;
        auto addr = resolve(*t);
        if (!addr) {
            uv_close(&s->handle, [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
            return core::Unexpected{addr.error()};
        }
        if (int rc = uv_tcp_bind(&s->tcp, reinterpret_cast<const sockaddr*>(&*addr), 0); rc != 0) {
            return fail(rc, "binding " + describe(endpoint));
        }
        sockaddr_storage bound{};
        int len = sizeof bound;
        uv_tcp_getsockname(&s->tcp, reinterpret_cast<sockaddr*>(&bound), &len);
        const std::uint16_t port =
            ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                             : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
        listener->bound_ = TcpEndpoint{t->host, port};
    } else {
        s->tcp_kind = false;
        s->unix_path = std::get<UnixEndpoint>(endpoint).path;
        uv_pipe_init(loop.get(), &s->pipe, 0);
        s->handle.data = s;
        // A socket file left by a process that died is removed; one that
        // still accepts connections belongs to a live process: refuse.
        if (unix_socket_in_use(s->unix_path)) {
            uv_close(&s->handle, [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
            return core::make_error(core::errc::busy,
                                    fmt::format("{} is in use by another process", s->unix_path));
        }
        ::unlink(s->unix_path.c_str());
        if (int rc = uv_pipe_bind(&s->pipe, s->unix_path.c_str()); rc != 0) {
            return fail(rc, "binding " + describe(endpoint));
        }
        listener->bound_ = endpoint;
    }
    int rc = uv_listen(&s->stream, 511, [](uv_stream_t* server, int status) {
        auto* st = static_cast<State*>(server->data);
        if (status < 0) return;  // EMFILE and friends: try again on the next one
        auto* h = new Connection::Handle{};
        if (st->tcp_kind) {
            uv_tcp_init(st->loop->get(), &h->tcp);
        } else {
            uv_pipe_init(st->loop->get(), &h->pipe, 0);
        }
        h->handle.data = h;
        if (uv_accept(server, &h->stream) != 0) {
            uv_close(&h->handle,
                     [](uv_handle_t* x) { delete static_cast<Connection::Handle*>(x->data); });
            return;
        }
        if (st->tcp_kind) {
            uv_tcp_nodelay(&h->tcp, 1);
            uv_tcp_keepalive(&h->tcp, 1, 60);
        }
        std::unique_ptr<Connection> c(
            new Connection(h, *st->handler, st->limits, peer_name(&h->stream)));
        c->start_reading();
        st->accepted(std::move(c));
    });
    if (rc != 0) return fail(rc, "listening on " + describe(endpoint));
    listener->state_ = s;
    return listener;
}

Listener::~Listener() {
    if (state_ == nullptr) return;
    if (!state_->tcp_kind) ::unlink(state_->unix_path.c_str());
    uv_close(&state_->handle, [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

}  // namespace spirit::net
