// daemon/ops/backup.h: one hot backup, streamed to the client that asked
// for it (docs/protocol.md, "Backup"). The store's compacting copy
// (Store::copy_to) runs on the loop's thread pool and writes into a pipe;
// the loop reads the pipe and sends what it read as BackupChunks, and ends
// with a BackupDone (size and BLAKE2b-256 of every byte sent) or an Error.
//
// Back-pressure: while the client's connection has more queued than it
// takes, the job stops reading the pipe, so the copy blocks: a slow client
// holds the copy's read transaction longer, never more memory.
//
// Owned by the Server, one at a time; loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "core/hash_chain.h"
#include "core/protocol.h"
#include "net/loop.h"
#include "net/pipe_reader.h"
#include "storage/store.h"

namespace spirit::daemon::ops {

// Bytes of copy per BackupChunk.
inline constexpr std::size_t backup_chunk_bytes = std::size_t{256} << 10;

class BackupJob {
 public:
    struct Client {
        std::function<bool()> writable;  // whether the connection takes more now
        std::function<void(const core::protocol::Message&)> send;
    };
    // Called once, on the loop thread, when the copy has ended (success,
    // failure or abort) and nothing of the job runs any more.
    using Finished = std::function<void()>;

    // Starts the copy. REQUIRES: `loop` and `store` outlive the job's
    // finishing. Errors: creating the pipe (errno), the size estimate.
    [[nodiscard]] static core::Result<std::unique_ptr<BackupJob>> start(net::Loop& loop,
                                                                        const storage::Store& store,
                                                                        std::uint64_t request_id,
                                                                        Client client,
                                                                        Finished finished);
    ~BackupJob();
    BackupJob(const BackupJob&) = delete;
    BackupJob& operator=(const BackupJob&) = delete;

    // The client's connection drained: send on.
    void resume();
    // Stops sending (the client went away, or the daemon stops): the pipe is
    // closed, so the copy fails at its next write and the job finishes.
    void abort();
    bool finished() const { return state_ == State::finished; }
    std::uint64_t bytes_sent() const { return offset_; }

 private:
    enum class State { copying, aborted, finished };
    BackupJob(std::uint64_t request_id, Client client, Finished finished, std::uint64_t estimate);
    void on_data(core::ByteView bytes);
    void on_end(std::optional<core::Error> error);
    void copy_done(core::Result<void> result);
    void send_chunk();
    void maybe_finish();

    std::uint64_t request_id_;
    Client client_;
    Finished finished_;
    std::uint64_t estimate_;
    std::unique_ptr<net::PipeReader> reader_;
    core::Bytes pending_;  // read, not yet sent
    std::uint64_t offset_ = 0;
    core::Blake2b256 hash_;
    State state_ = State::copying;
    bool pipe_ended_ = false;
    std::optional<core::Error> pipe_error_;
    std::optional<core::Result<void>> copy_result_;
};

}  // namespace spirit::daemon::ops
