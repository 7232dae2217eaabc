#include "daemon/ops/backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "daemon/log.h"

namespace spirit::daemon::ops {

using core::errc;
namespace proto = core::protocol;

core::Result<std::unique_ptr<BackupJob>> BackupJob::start(net::Loop& loop,
                                                          const storage::Store& store,
                                                          std::uint64_t request_id, Client client,
                                                          Finished finished) {
    auto estimate = store.copy_bytes_estimate();
    if (!estimate) return core::Unexpected{estimate.error()};
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return core::make_error(
            std::error_code(errno, std::generic_category()),
            fmt::format("creating a pipe for the backup: {}", std::strerror(errno)));
    }
    std::unique_ptr<BackupJob> job(
        new BackupJob(request_id, std::move(client), std::move(finished), *estimate));
    BackupJob* self = job.get();
    auto reader = net::PipeReader::open(
        loop, fds[0], [self](core::ByteView bytes) { self->on_data(bytes); },
        [self](std::optional<core::Error> error) { self->on_end(std::move(error)); });
    if (!reader) {
        ::close(fds[1]);
        return core::Unexpected{reader.error()};
    }
    job->reader_ = std::move(*reader);
    // The copy blocks on the pipe while the client is slow: a pool thread of
    // its own until it ends. Its end closes the write side, which ends the read.
    auto result = std::make_shared<core::Result<void>>();
    loop.queue_work(
        [&store, fd = fds[1], result] {
            *result = store.copy_to(fd);
            ::close(fd);
        },
        [self, result] { self->copy_done(std::move(*result)); });
    spdlog::info("backup: started, about {} bytes", *estimate);
    return job;
}

BackupJob::BackupJob(std::uint64_t request_id, Client client, Finished finished,
                     std::uint64_t estimate)
    : request_id_(request_id),
      client_(std::move(client)),
      finished_(std::move(finished)),
      estimate_(estimate) {}

BackupJob::~BackupJob() {
    // The copy's completion refers to this job: it must have run.
    SPIRIT_ASSERT(state_ == State::finished);
}

void BackupJob::on_data(core::ByteView bytes) {
    if (state_ != State::copying) return;
    pending_.insert(pending_.end(), bytes.begin(), bytes.end());
    while (pending_.size() >= backup_chunk_bytes && state_ == State::copying) {
        if (!client_.writable()) {
            reader_->pause();  // resume() reads on
            return;
        }
        send_chunk();
    }
}

void BackupJob::send_chunk() {
    const std::size_t n = std::min(pending_.size(), backup_chunk_bytes);
    const core::ByteView data(pending_.data(), n);
    hash_.update(data);
    client_.send(proto::BackupChunk{request_id_, offset_, estimate_, data});
    offset_ += n;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
}

void BackupJob::resume() {
    if (state_ != State::copying) return;
    while (pending_.size() >= backup_chunk_bytes && client_.writable()) send_chunk();
    if (pending_.size() < backup_chunk_bytes && reader_ && !pipe_ended_) reader_->resume();
    maybe_finish();
}

void BackupJob::abort() {
    if (state_ != State::copying) return;
    state_ = State::aborted;
    reader_.reset();  // closes the read side: the copy's next write fails
    pending_.clear();
    spdlog::info("backup: stopped after {} bytes (the client went away or the daemon stops)",
                 offset_);
    maybe_finish();
}

void BackupJob::on_end(std::optional<core::Error> error) {
    pipe_ended_ = true;
    pipe_error_ = std::move(error);
    maybe_finish();
}

void BackupJob::copy_done(core::Result<void> result) {
    copy_result_ = std::move(result);
    if (!*copy_result_ && state_ == State::copying) {
        // The copy failed: what it wrote is incomplete, whatever the pipe holds.
        reader_.reset();
        pipe_ended_ = true;
    }
    maybe_finish();
}

void BackupJob::maybe_finish() {
    if (state_ == State::finished || !copy_result_) return;
    if (state_ == State::copying) {
        if (!pipe_ended_) return;
        if (*copy_result_ && !pipe_error_) {
            // Everything is read: send what is left, then the end.
            while (!pending_.empty()) {
                if (!client_.writable()) return;  // resume() continues
                send_chunk();
            }
            client_.send(proto::BackupDone{request_id_, offset_, hash_.finish()});
            spdlog::info("backup: {} bytes sent", offset_);
        } else {
            const core::Error e = !*copy_result_ ? copy_result_->error() : *pipe_error_;
            spdlog::error("backup failed after {} bytes: {}", offset_, e.message());
            client_.send(proto::ErrorReply{
                request_id_,
                e.code.category() == core::spirit_category()
                    ? static_cast<std::uint32_t>(e.code.value())
                    : static_cast<std::uint32_t>(errc::storage_io),
                fmt::format("backup failed after {} bytes: {}", offset_, e.detail)});
        }
    }
    state_ = State::finished;
    reader_.reset();
    Finished finished = std::move(finished_);
    finished();
}

}  // namespace spirit::daemon::ops
