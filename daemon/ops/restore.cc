#include "daemon/ops/restore.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "daemon/cluster/node_record.h"
#include "storage/store.h"

namespace spirit::daemon::ops {

namespace {

void say(const std::string& line) {
    std::fprintf(stderr, "spiritd: %s\n", line.c_str());
}

// Every stream's chain, with a line per stream. The count of events checked,
// or the first break.
core::Result<std::pair<std::size_t, std::uint64_t>> verify_all(const storage::Store& store) {
    auto streams = store.list_streams();
    if (!streams) return core::Unexpected{streams.error()};
    std::uint64_t events = 0;
    for (const storage::StreamInfo& info : *streams) {
        auto report = store.verify(info.name);
        if (!report) return core::Unexpected{report.error()};
        if (report->first_break) {
            return core::make_error(
                core::errc::hash_mismatch,
                fmt::format("stream {}: {}", info.name, report->first_break->problem));
        }
        events += report->events_checked;
        say(fmt::format("restore: {} ok, {} events (seq {}..{})", info.name, report->events_checked,
                        report->first_seq.value(), report->last_seq.value()));
    }
    return std::pair{streams->size(), events};
}

// caught_up = 0: the copies are a backup's (daemon/cluster/cluster.cc).
core::Result<void> mark_restored(storage::Store& store) {
    std::atomic<bool> finished{false};
    core::Result<void> outcome;
    SPIRIT_TRY(store.put_node_value(node_key_caught_up, core::Bytes{std::byte{0}},
                                    [&](core::Result<void> r) {
                                        outcome = std::move(r);
                                        finished = true;
                                    }));
    while (!finished) {
        store.drain_completed();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return outcome;
}

void remove_store(const std::filesystem::path& data_dir) {
    std::error_code ec;
    std::filesystem::remove(data_dir / "data.mdb", ec);
    std::filesystem::remove(data_dir / "lock.mdb", ec);
}

}  // namespace

int restore(const Config& config, const std::filesystem::path& backup) {
    const std::filesystem::path& dir = config.node.data_dir;
    auto installed = storage::restore_copy(backup, dir);
    if (!installed) {
        say(fmt::format("--restore {}: {}", backup.string(), installed.error().message()));
        return installed.error().is(core::errc::invalid_argument) ? 2 : 1;
    }
    say(fmt::format("restore: {} bytes copied to {}", installed->bytes,
                    installed->data_file.string()));
    auto store = storage::Store::open(config.store_options());
    if (!store) {
        say(fmt::format("restore: opening the restored store in {}: {}", dir.string(),
                        store.error().message()));
        remove_store(dir);
        return 1;
    }
    auto verified = verify_all(**store);
    core::Result<void> marked = verified ? mark_restored(**store) : core::Result<void>{};
    store->reset();
    if (!verified || !marked) {
        const core::Error& e = !verified ? verified.error() : marked.error();
        say(fmt::format("restore: {}; the restored store was removed again", e.message()));
        remove_store(dir);
        return 1;
    }
    say(fmt::format("restored {} into {}: {} streams, {} events, every chain verified",
                    backup.string(), dir.string(), verified->first, verified->second));
    return 0;
}

}  // namespace spirit::daemon::ops
