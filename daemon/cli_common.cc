#include "daemon/cli_common.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace spirit::daemon::cli {

using core::errc;

int exit_for(const core::Error& e) {
    if (e.is(errc::connection_lost)) return unreachable;
    if (e.is(errc::timeout)) return timed_out;
    if (e.code.category() != core::spirit_category()) return unreachable;  // socket errors
    return failed;
}

int fail(const core::Error& e) {
    std::fprintf(stderr, "spirit: %s\n", e.message().c_str());
    return exit_for(e);
}

core::Result<std::unique_ptr<net::Client>> connect(const Global& g) {
    net::ClientOptions options;
    options.client_name = "spirit-cli";
    options.request_timeout_ms = g.timeout_ms;
    options.reconnect = false;
    if (!g.token.empty()) options.token = g.token;
    if (!g.socket.empty()) {
        options.endpoint = net::UnixEndpoint{g.socket};
    } else {
        std::string server = g.server;
        if (server.empty()) {
            const char* env = std::getenv("SPIRIT_SERVER");
            server = env != nullptr && env[0] != '\0' ? env : "127.0.0.1:7700";
        }
        auto endpoint = net::parse_endpoint(server);
        if (!endpoint) return core::Unexpected{endpoint.error()};
        options.endpoint = *endpoint;
    }
    return net::Client::connect(options);
}

std::optional<int> follow(net::Client& client, const net::Subscription& subscription,
                          const std::uint64_t& received, const FollowLimits& limits) {
    auto last_progress = std::chrono::steady_clock::now();
    std::uint64_t seen = 0;
    while (limits.count == 0 || received < limits.count) {
        auto r = client.run_for(std::chrono::milliseconds(100));
        if (!r) return fail(r.error());
        if (const auto& ended = subscription.ended()) {
            std::fflush(stdout);
            return ended->code ? fail(*ended) : ok;
        }
        if (received != seen) {
            seen = received;
            last_progress = std::chrono::steady_clock::now();
        } else if (limits.idle_exit_ms > 0 && std::chrono::steady_clock::now() - last_progress >
                                                  std::chrono::milliseconds(limits.idle_exit_ms)) {
            break;
        }
    }
    std::fflush(stdout);
    return std::nullopt;
}

}  // namespace spirit::daemon::cli
