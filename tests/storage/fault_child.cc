// spirit_fault_child DATA_DIR COUNT: appends COUNT one-event batches to
// stream "faulty", waiting for each, and prints "ack SEQ" or
// "fail ERRC: DETAIL" per append. Run under fiu-run to inject I/O errors.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/store.h"

using namespace spirit;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: spirit_fault_child DATA_DIR COUNT\n");
        return 2;
    }
    storage::StoreOptions options;
    options.data_dir = argv[1];
    auto store = storage::Store::open(options);
    if (!store) {
        std::printf("open failed: %s\n", store.error().message().c_str());
        return 1;
    }
    const int count = std::atoi(argv[2]);
    for (int i = 0; i < count; ++i) {
        const std::string payload = "event-" + std::to_string(i);
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        auto r = (*store)->append_sync({.stream = "faulty", .events = std::span(&e, 1)});
        if (r) {
            std::printf("ack %llu %s\n", static_cast<unsigned long long>(r->first_seq.value()),
                        payload.c_str());
        } else {
            std::printf("fail %s: %s\n",
                        core::errc_name(static_cast<core::errc>(r.error().code.value())),
                        r.error().detail.c_str());
        }
        std::fflush(stdout);
    }
    std::printf("done\n");
    return 0;
}
