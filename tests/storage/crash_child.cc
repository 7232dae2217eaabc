// spirit_crash_child DATA_DIR: appends to stream "crash" forever, keeping up
// to four appends in flight, and prints "ack <last seq>" for every
// acknowledged append. Each event's payload is the decimal seq it is meant
// to get, continuing from the stream's last seq at start, so the parent can
// check every stored event after killing this process at random moments.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/store.h"
#include "tests/support/commit_waiter.h"

using namespace spirit;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: spirit_crash_child DATA_DIR\n");
        return 2;
    }
    storage::StoreOptions options;
    options.data_dir = argv[1];
    auto opened = storage::Store::open(options);
    if (!opened) {
        std::fprintf(stderr, "open: %s\n", opened.error().message().c_str());
        return 1;
    }
    storage::Store& store = **opened;
    test::CommitWaiter commits(store);
    std::uint64_t next = 1;
    if (auto info = store.stream_info("crash"); info && *info) next = (*info)->last_seq.value() + 1;

    int in_flight = 0;
    std::uint64_t round = 0;
    for (;;) {
        while (in_flight < 4) {
            // Batch sizes 1..37, so commits and kills land at varied points.
            const std::uint64_t count = 1 + (round++ * 7) % 37;
            std::vector<std::string> payloads;
            for (std::uint64_t i = 0; i < count; ++i) payloads.push_back(std::to_string(next + i));
            std::vector<core::EventDraft> events;
            for (const std::string& p : payloads) {
                events.push_back({std::nullopt, "crash", {}, core::as_bytes(p)});
            }
            auto r = store.append(
                {.stream = "crash", .events = events},
                [&](core::Result<storage::AppendResult> result) {
                    --in_flight;
                    if (!result) {
                        std::fprintf(stderr, "append: %s\n", result.error().message().c_str());
                        std::exit(1);
                    }
                    std::printf("ack %llu\n",
                                static_cast<unsigned long long>(result->last_seq.value()));
                    std::fflush(stdout);
                });
            if (!r) {
                std::fprintf(stderr, "append: %s\n", r.error().message().c_str());
                return 1;
            }
            next += count;
            ++in_flight;
        }
        commits.wait_and_drain();
    }
}
