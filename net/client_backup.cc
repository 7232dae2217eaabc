// Client::backup: the pieces of a hot backup go to the caller's sink as
// they arrive, so a copy larger than memory streams through.
#include <fmt/format.h>

#include "net/client.h"

namespace spirit::net {

using core::errc;
namespace proto = core::protocol;

void Client::on_backup_chunk(const proto::BackupChunk& chunk) {
    if (!backup_ || backup_->request_id != chunk.request_id || backup_->sink_error) return;
    ++backup_->chunks;
    if (auto r = (*backup_->sink)(chunk); !r) {
        backup_->sink_error = r.error();
        // Hanging up is how a client stops the daemon's copy.
        if (connection_ && !connection_->closing()) {
            connection_->close(r.error(), Connection::Flush::no);
        }
    }
}

core::Result<proto::BackupDone> Client::backup(const BackupSink& sink) {
    if (!ready_) return core::make_error(errc::connection_lost, "not connected");
    const std::uint64_t id = next_request_id_++;
    backup_ = BackupState{id, &sink, 0, std::nullopt};
    replies_[id] = std::nullopt;
    send(proto::Backup{id});
    core::Result<void> waited;
    while (true) {
        const std::uint64_t chunks = backup_->chunks;
        waited = run_until(
            [&] {
                return replies_[id].has_value() || backup_->chunks != chunks ||
                       backup_->sink_error.has_value();
            },
            std::chrono::milliseconds(options_.request_timeout_ms));
        if (!waited || replies_[id].has_value() || backup_->sink_error) break;
    }
    auto reply = std::move(replies_[id]);
    replies_.erase(id);
    const BackupState state = *backup_;
    backup_.reset();
    if (state.sink_error) return core::Unexpected{*state.sink_error};
    if (!waited) {
        if (waited.error().is(errc::timeout)) {
            return core::make_error(errc::timeout,
                                    fmt::format("no backup data for {} ms (after {} pieces)",
                                                options_.request_timeout_ms, state.chunks));
        }
        return core::Unexpected{waited.error()};
    }
    if (!*reply) return core::Unexpected{reply->error()};
    if (auto* done = std::get_if<proto::BackupDone>(&**reply)) return *done;
    return core::make_error(
        errc::malformed,
        fmt::format("unexpected reply {} to a Backup", proto::type_name(proto::type_of(**reply))));
}

}  // namespace spirit::net
