#include "daemon/cli/ops_commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "core/hash_chain.h"
#include "daemon/cli/progress.h"
#include "daemon/cli/status_format.h"

namespace spirit::daemon::cli {

using core::errc;
namespace proto = core::protocol;

namespace {

// spirit's exit codes (daemon/cli.h).
constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_broken_chain = 3;

core::Error errno_error(int e, const std::string& what) {
    return core::Error{std::error_code(e, std::generic_category()),
                       fmt::format("{}: {}", what, std::strerror(e))};
}

int status(const Connect& connect, const Fail& fail, const OpsCommands& c) {
    auto client = connect();
    if (!client) return fail(client.error());
    const bool terminal = ::isatty(STDOUT_FILENO) == 1;
    for (std::uint64_t n = 1;; ++n) {
        auto s = (*client)->status();
        if (!s) return fail(s.error());
        std::string out = c.status.json ? status_json(*s) + "\n" : status_text(*s);
        if (c.status.watch && !c.status.json) {
            // In place on a terminal (home, clear); blocks apart otherwise.
            out = terminal ? "\x1b[H\x1b[2J" + out : (n > 1 ? "\n" : "") + out;
        }
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
        if (!c.status.watch || (c.status.count > 0 && n >= c.status.count)) return exit_ok;
        std::this_thread::sleep_for(std::chrono::milliseconds(c.status.interval_ms));
    }
}

// Where a backup goes: FILE.partial until every byte is in and checked.
struct BackupFile {
    std::filesystem::path path;
    std::filesystem::path partial;
    int fd = -1;
    std::uint64_t written = 0;
    core::Blake2b256 hash;

    ~BackupFile() {
        if (fd >= 0) ::close(fd);
        if (!partial.empty()) ::unlink(partial.c_str());  // emptied once renamed
    }

    core::Result<void> write(core::ByteView bytes) {
        for (std::size_t at = 0; at < bytes.size();) {
            const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return core::Unexpected{errno_error(errno, "writing " + partial.string())};
            at += static_cast<std::size_t>(n);
        }
        hash.update(bytes);
        written += bytes.size();
        return {};
    }

    core::Result<void> commit() {
        if (::fsync(fd) != 0) {
            return core::Unexpected{errno_error(errno, "syncing " + partial.string())};
        }
        ::close(fd);
        fd = -1;
        if (::rename(partial.c_str(), path.c_str()) != 0) {
            return core::Unexpected{errno_error(errno, "renaming " + partial.string())};
        }
        partial.clear();
        std::filesystem::path dir = path.parent_path();
        if (dir.empty()) dir = ".";
        const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            ::fsync(dir_fd);
            ::close(dir_fd);
        }
        return {};
    }
};

// Opens FILE.partial for a backup to `out`; a usage error (printed) if not.
std::optional<int> open_backup_file(const OpsCommands& c, BackupFile& file) {
    const std::string& out = c.backup.out;
    std::error_code ec;
    if (std::filesystem::is_directory(out, ec)) {
        std::fprintf(stderr, "spirit: --out %s: is a directory; name a file\n", out.c_str());
        return exit_usage;
    }
    if (std::filesystem::exists(out, ec) && !c.backup.force) {
        std::fprintf(stderr, "spirit: --out %s: the file exists; remove it or give --force\n",
                     out.c_str());
        return exit_usage;
    }
    file.path = out;
    file.partial = out + ".partial";
    file.fd = ::open(file.partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (file.fd < 0) {
        const int e = errno;
        std::fprintf(stderr, "spirit: --out %s: cannot create %s: %s\n", out.c_str(),
                     file.partial.c_str(), std::strerror(e));
        file.partial.clear();
        return exit_usage;
    }
    return std::nullopt;
}

int backup(const Connect& connect, const Fail& fail, const OpsCommands& c) {
    BackupFile file;
    if (auto code = open_backup_file(c, file)) return *code;
    auto client = connect();
    if (!client) return fail(client.error());
    Progress progress("backup", 0, ProgressUnit::bytes, Progress::style_for(stderr), stderr);
    bool write_failed = false;  // the file's fault, not the daemon's or the connection's
    auto done = (*client)->backup([&](const proto::BackupChunk& chunk) -> core::Result<void> {
        if (chunk.offset != file.written) {
            return core::make_error(errc::malformed,
                                    fmt::format("a backup piece at offset {}, expected {}",
                                                chunk.offset, file.written));
        }
        if (auto r = file.write(chunk.data); !r) {
            write_failed = true;
            return r;
        }
        progress.set_total(chunk.bytes_estimate);
        progress.update(file.written);
        return {};
    });
    progress.clear();
    if (!done && write_failed) {
        std::fprintf(stderr, "spirit: %s (nothing was kept)\n", done.error().message().c_str());
        return exit_failed;
    }
    if (!done) return fail(done.error());
    const core::Digest hash = file.hash.finish();
    if (done->bytes != file.written || done->hash != hash) {
        return fail(core::Error{
            core::make_error_code(errc::hash_mismatch),
            fmt::format("the backup's {} bytes (BLAKE2b {}) are not what the daemon sent ({} "
                        "bytes, {}); nothing was kept",
                        file.written, core::digest_hex(hash), done->bytes,
                        core::digest_hex(done->hash))});
    }
    if (auto r = file.commit(); !r) {
        std::fprintf(stderr, "spirit: %s\n", r.error().message().c_str());
        return exit_failed;
    }
    progress.finish(file.written);
    std::printf("backup written to %s: %llu bytes, BLAKE2b-256 %s\n", c.backup.out.c_str(),
                static_cast<unsigned long long>(file.written), core::digest_hex(hash).c_str());
    return exit_ok;
}

int verify(const Connect& connect, const Fail& fail, const std::string& stream) {
    auto client = connect();
    if (!client) return fail(client.error());
    auto list = (*client)->streams();
    if (!list) return fail(list.error());
    std::vector<proto::StreamDescription> streams;
    std::uint64_t total = 0;
    for (proto::StreamDescription& d : *list) {
        if (!stream.empty() && d.name != stream) continue;
        total += d.event_count;
        streams.push_back(std::move(d));
    }
    if (!stream.empty() && streams.empty()) {
        // Let the daemon say what is wrong with the name (not_found, invalid).
        streams.push_back(proto::StreamDescription{stream});
    }
    Progress progress("verify", total, ProgressUnit::events, Progress::style_for(stderr), stderr);
    int result = exit_ok;
    std::uint64_t checked = 0;
    for (const proto::StreamDescription& d : streams) {
        auto r = (*client)->verify(d.name);
        progress.clear();
        if (!r) return fail(r.error());
        checked += r->events_checked;
        if (r->break_seq) {
            std::printf("%s: BROKEN at seq %llu: %s\n", d.name.c_str(),
                        static_cast<unsigned long long>(r->break_seq->value()), r->problem.c_str());
            result = exit_broken_chain;
        } else {
            std::printf("%s: ok, %llu events (seq %llu..%llu)\n", d.name.c_str(),
                        static_cast<unsigned long long>(r->events_checked),
                        static_cast<unsigned long long>(r->first_seq.value()),
                        static_cast<unsigned long long>(r->last_seq.value()));
        }
        std::fflush(stdout);
        progress.update(checked);
    }
    progress.finish(checked);
    return result;
}

}  // namespace

void add_ops_commands(CLI::App& app, OpsCommands& c) {
    c.status_cmd = app.add_subcommand("status", "show the daemon's status");
    c.status_cmd->add_flag("--json", c.status.json,
                           "one JSON object (fields in docs/operations.md)");
    c.status_cmd->add_flag("--watch", c.status.watch,
                           "refresh every --interval-ms (in place on a terminal)");
    c.status_cmd->add_option("--interval-ms", c.status.interval_ms, "--watch: time between")
        ->capture_default_str()
        ->check(CLI::Range(100u, 3'600'000u));
    c.status_cmd->add_option("--count", c.status.count, "--watch: stop after N (0: never)");
    c.backup_cmd =
        app.add_subcommand("backup", "write a consistent copy of the daemon's store to a file");
    c.backup_cmd->add_option("--out", c.backup.out, "the file to write (FILE.partial until done)")
        ->required();
    c.backup_cmd->add_flag("--force", c.backup.force, "replace FILE if it exists");
    c.verify_cmd = app.add_subcommand("verify", "check every hash link of a stream (or all)");
    c.verify_cmd->add_option("stream", c.verify_stream, "stream name (default: every stream)");
}

std::optional<int> run_ops_command(const Connect& connect, const Fail& fail, const OpsCommands& c) {
    if (c.status_cmd->parsed()) return status(connect, fail, c);
    if (c.backup_cmd->parsed()) return backup(connect, fail, c);
    if (c.verify_cmd->parsed()) return verify(connect, fail, c.verify_stream);
    return std::nullopt;
}

}  // namespace spirit::daemon::cli
