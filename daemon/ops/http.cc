#include "daemon/ops/http.h"

#include <netdb.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <mutex>

#include <civetweb.h>
#include <fmt/format.h>

#include "daemon/log.h"

namespace spirit::daemon::ops {

using core::errc;

struct HttpServer::Impl {
    std::vector<HttpRoute> routes;
};

namespace {

// civetweb wants a numeric address: a host name resolves to its first one.
core::Result<std::string> listening_port(const HostPort& listen) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(listen.host.c_str(), nullptr, &hints, &found); rc != 0) {
        return core::make_error(
            errc::config_invalid,
            fmt::format("metrics.listen {}:{}: cannot resolve {}: {}", listen.host, listen.port,
                        listen.host, ::gai_strerror(rc)));
    }
    std::array<char, NI_MAXHOST> numeric{};
    const int family = found->ai_family;
    const int rc =
        ::getnameinfo(found->ai_addr, found->ai_addrlen, numeric.data(),
                      static_cast<socklen_t>(numeric.size()), nullptr, 0, NI_NUMERICHOST);
    ::freeaddrinfo(found);
    if (rc != 0) {
        return core::make_error(errc::config_invalid, fmt::format("metrics.listen {}: {}",
                                                                  listen.host, ::gai_strerror(rc)));
    }
    if (family == AF_INET6) return fmt::format("[{}]:{}", numeric.data(), listen.port);
    return fmt::format("{}:{}", numeric.data(), listen.port);
}

int handle_cb(mg_connection* connection, void* data) noexcept {
    const auto* route = static_cast<const HttpRoute*>(data);
    const mg_request_info* request = mg_get_request_info(connection);
    const bool head = std::strcmp(request->request_method, "HEAD") == 0;
    if (!head && std::strcmp(request->request_method, "GET") != 0) {
        mg_send_http_error(connection, 405, "%s", "only GET and HEAD are served\n");
        return 405;
    }
    HttpResponse response;
    try {
        response = route->handler();
    } catch (const std::exception& e) {  // prometheus-cpp's, say: never into civetweb's C frames
        response = HttpResponse{500, "text/plain; charset=utf-8", e.what()};
    }
    mg_printf(connection,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
              response.status, mg_get_response_code_text(connection, response.status),
              response.content_type.c_str(), response.body.size());
    if (!head) mg_write(connection, response.body.data(), response.body.size());
    return response.status;
}

int log_message_cb(const mg_connection*, const char* message) noexcept {
    spdlog::warn("metrics listener: {}", message);
    return 1;
}

}  // namespace

core::Result<std::unique_ptr<HttpServer>> HttpServer::start(const HostPort& listen,
                                                            std::vector<HttpRoute> routes) {
    static std::once_flag initialised;
    std::call_once(initialised, [] { mg_init_library(0); });
    auto port = listening_port(listen);
    if (!port) return core::Unexpected{port.error()};
    std::unique_ptr<HttpServer> server(new HttpServer());
    server->impl_ = std::make_unique<Impl>(Impl{std::move(routes)});
    const char* options[] = {"listening_ports",    port->c_str(), "num_threads", "4",
                             "request_timeout_ms", "10000",       nullptr};
    mg_callbacks callbacks{};
    callbacks.log_message = log_message_cb;
    std::array<char, 256> error_text{};
    unsigned error_code = 0;
    mg_init_data init{&callbacks, nullptr, options};
    mg_error_data error{&error_code, error_text.data(), error_text.size()};
    server->context_ = mg_start2(&init, &error);
    if (server->context_ == nullptr) {
        return core::make_error(
            errc::config_invalid,
            fmt::format("metrics.listen {}: cannot listen: {}", *port,
                        error_text[0] != '\0' ? error_text.data() : "civetweb did not start"));
    }
    for (HttpRoute& route : server->impl_->routes) {
        mg_set_request_handler(server->context_, route.path.c_str(), handle_cb, &route);
    }
    std::array<mg_server_port, 4> ports{};
    if (mg_get_server_ports(server->context_, static_cast<int>(ports.size()), ports.data()) > 0) {
        server->port_ = static_cast<std::uint16_t>(ports[0].port);
    }
    return server;
}

HttpServer::~HttpServer() {
    if (context_ != nullptr) mg_stop(context_);
}

}  // namespace spirit::daemon::ops
