// spirit_sync_child DATA_DIR MODE COMMITS PERIOD_MS: opens a store in sync
// mode MODE (always, periodic, none), appends COMMITS one-event batches one
// after the other (each its own commit), and in mode periodic then waits
// (up to 30 s) until the timer synced once. Prints
// "commits C syncs S elapsed_ms E" from the store's own counters before it
// closes the store. Run under strace to count the real sync syscalls.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "storage/store.h"

using namespace spirit;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: spirit_sync_child DATA_DIR MODE COMMITS PERIOD_MS\n");
        return 2;
    }
    storage::StoreOptions options;
    options.data_dir = argv[1];
    const std::string mode = argv[2];
    if (mode == "always") {
        options.sync_mode = storage::SyncMode::always;
    } else if (mode == "periodic") {
        options.sync_mode = storage::SyncMode::periodic;
    } else if (mode == "none") {
        options.sync_mode = storage::SyncMode::none;
    } else {
        std::fprintf(stderr, "spirit_sync_child: unknown mode %s\n", mode.c_str());
        return 2;
    }
    options.sync_period_ms = static_cast<std::uint32_t>(std::atoi(argv[4]));
    auto store = storage::Store::open(options);
    if (!store) {
        std::printf("open failed: %s\n", store.error().message().c_str());
        return 1;
    }
    const auto start = std::chrono::steady_clock::now();
    const int commits = std::atoi(argv[3]);
    for (int i = 0; i < commits; ++i) {
        const std::string payload = "event-" + std::to_string(i);
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        auto r = (*store)->append_sync({.stream = "synced", .events = std::span(&e, 1)});
        if (!r) {
            std::printf("append failed: %s\n", r.error().message().c_str());
            return 1;
        }
    }
    if (options.sync_mode == storage::SyncMode::periodic) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while ((*store)->stats().syncs == 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    const storage::StoreStats stats = (*store)->stats();
    std::printf(
        "commits %llu syncs %llu elapsed_ms %lld\n", static_cast<unsigned long long>(stats.commits),
        static_cast<unsigned long long>(stats.syncs), static_cast<long long>(elapsed.count()));
    return 0;
}
