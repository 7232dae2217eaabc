// daemon/cli/ops_commands.h: the spirit commands for operators: `status`
// (text, --json, --watch), `backup --out FILE` and `verify` with a progress
// bar. daemon/cli.cc registers them with add_ops_commands and runs the one
// parsed with run_ops_command.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "net/client.h"

namespace CLI {
class App;
}

namespace spirit::daemon::cli {

// Opens a connection as the global options say.
using Connect = std::function<core::Result<std::unique_ptr<net::Client>>()>;
// Prints "spirit: MESSAGE" and returns the exit code for the error.
using Fail = std::function<int(const core::Error&)>;

struct OpsCommands {
    struct {
        bool json = false;
        bool watch = false;
        std::uint32_t interval_ms = 1000;
        std::uint64_t count = 0;  // --watch: stop after this many (0: until interrupted)
    } status;
    struct {
        std::string out;
        bool force = false;
    } backup;
    std::string verify_stream;
    CLI::App* status_cmd = nullptr;
    CLI::App* backup_cmd = nullptr;
    CLI::App* verify_cmd = nullptr;
};

// REQUIRES: `c` outlives the parse of `app` (CLI11 writes into it).
void add_ops_commands(CLI::App& app, OpsCommands& c);
// The exit code of the command that was parsed; nullopt if none was.
std::optional<int> run_ops_command(const Connect& connect, const Fail& fail, const OpsCommands& c);

}  // namespace spirit::daemon::cli
