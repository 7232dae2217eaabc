// daemon/ops/http.h: the metrics listener's HTTP server: a few GET routes,
// each answered by a handler, over civetweb (which parses HTTP and runs
// the requests on its own threads). Nothing here is spirit-specific.
//
// Threads: handlers run on civetweb's worker threads, concurrently; they
// must be thread-safe. The server stops (and waits for requests in
// progress) when destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "daemon/config.h"

struct mg_context;

namespace spirit::daemon::ops {

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

using HttpHandler = std::function<HttpResponse()>;

struct HttpRoute {
    std::string path;  // exact, e.g. "/metrics"
    HttpHandler handler;
};

class HttpServer {
 public:
    // Listens on `listen` (port 0: any free port, see port()) and serves
    // GET and HEAD of `routes`; other paths are 404, other methods 405.
    // Errors (errc::config_invalid for an address civetweb cannot listen
    // on, naming it and civetweb's reason) are returned.
    [[nodiscard]] static core::Result<std::unique_ptr<HttpServer>> start(
        const HostPort& listen, std::vector<HttpRoute> routes);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // The port it listens on.
    std::uint16_t port() const { return port_; }

    struct Impl;

 private:
    HttpServer() = default;
    std::unique_ptr<Impl> impl_;
    mg_context* context_ = nullptr;
    std::uint16_t port_ = 0;
};

}  // namespace spirit::daemon::ops
