// daemon/cli_common.h: what every command of the spirit CLI shares: the
// exit codes (daemon/cli.h lists them), the global options, connecting to
// the daemon, and reporting an error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "net/client.h"

namespace spirit::daemon::cli {

enum Exit : int { ok = 0, failed = 1, usage = 2, broken_chain = 3, unreachable = 4, timed_out = 5 };

// The exit code for an error: unreachable for a lost or failed connection,
// timed_out for a timeout, failed for a refusal.
int exit_for(const core::Error& e);
// Prints "spirit: MESSAGE" on stderr; returns exit_for(e).
int fail(const core::Error& e);

// --server, --socket, --token, --timeout.
struct Global {
    std::string server;
    std::string socket;
    std::string token;
    std::uint32_t timeout_ms = 30'000;
};

// A client connected to the daemon `g` names (--socket, else --server,
// else $SPIRIT_SERVER, else 127.0.0.1:7700), with no reconnection.
[[nodiscard]] core::Result<std::unique_ptr<net::Client>> connect(const Global& g);

// When a command that follows a subscription stops on its own.
struct FollowLimits {
    std::uint64_t count = 0;         // after this many events (0: never)
    std::uint32_t idle_exit_ms = 0;  // after this long without one (0: never)
};

// Runs `client` while `subscription` delivers (its handler counts what it
// printed in `received`), until limits.count events or limits.idle_exit_ms
// without one. Returns the exit code when the subscription ended or the
// connection failed (reported), nullopt when a limit stopped it. Flushes
// stdout either way.
std::optional<int> follow(net::Client& client, const net::Subscription& subscription,
                          const std::uint64_t& received, const FollowLimits& limits);

}  // namespace spirit::daemon::cli
