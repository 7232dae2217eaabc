// The idempotency window against a reference model (std::map plus an
// insertion-order list): random inserts, erases, truncations and evictions
// in a small table so probe runs wrap and backward-shift deletion is
// exercised; after every step both must agree on every key ever used.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <random>

#include "storage/dedup_window.h"

using namespace spirit;
using storage::detail::DedupWindow;

namespace {

struct Model {
    struct Entry {
        std::uint64_t seq, generation, ts;
    };
    std::map<std::pair<std::uint64_t, std::uint64_t>, Entry> live;
    std::deque<std::tuple<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>>> order;
    std::uint64_t events_max, window_ns;

    void evict_oldest() {
        auto [ts, key] = order.front();
        order.pop_front();
        auto it = live.find(key);
        if (it != live.end() && it->second.ts == ts) live.erase(it);
    }
};

core::EventId id_of(std::uint64_t n) {
    core::EventId id;
    core::store_be64(id.bytes.data() + 8, n);
    return id;
}

}  // namespace

TEST_CASE("the dedup window agrees with a reference model under random operations",
          "[storage][unit][property]") {
    std::mt19937_64 rng(7);
    for (int run = 0; run < 20; ++run) {
        const std::uint64_t events_max = 1 + rng() % 40;
        const std::uint64_t window_ns = 50 + rng() % 200;
        DedupWindow window(events_max, window_ns);
        Model model{{}, {}, events_max, window_ns};
        std::uint64_t now = 1000;
        for (int step = 0; step < 3000; ++step) {
            const std::uint64_t stream = 1 + rng() % 3;
            const std::uint64_t key = rng() % 60;
            const std::uint64_t generation = 1 + rng() % 2;
            now += rng() % 5;
            switch (rng() % 10) {
                case 0: {
                    window.erase(core::StreamId{stream}, id_of(key), generation);
                    auto it = model.live.find({stream, key});
                    if (it != model.live.end() && it->second.generation == generation) {
                        model.live.erase(it);
                    }
                    break;
                }
                case 1: {
                    const std::uint64_t after = rng() % 100;
                    window.erase_after(core::StreamId{stream}, core::Seq{after});
                    std::erase_if(model.live, [&](const auto& kv) {
                        return kv.first.first == stream && kv.second.seq > after;
                    });
                    break;
                }
                case 2:
                    window.evict_expired(core::TimestampNs{now});
                    while (!model.order.empty() &&
                           std::get<0>(model.order.front()) + window_ns < now) {
                        model.evict_oldest();
                    }
                    break;
                default: {
                    const std::uint64_t seq = rng() % 100;
                    auto found =
                        window.find_or_insert(core::StreamId{stream}, id_of(key), core::Seq{seq},
                                              generation, core::TimestampNs{now});
                    auto it = model.live.find({stream, key});
                    if (it != model.live.end()) {
                        REQUIRE(found);
                        REQUIRE(found->seq.value() == it->second.seq);
                    } else {
                        REQUIRE_FALSE(found);
                        if (model.order.size() == events_max) model.evict_oldest();
                        model.live[{stream, key}] = {seq, generation, now};
                        model.order.emplace_back(now, std::make_pair(stream, key));
                    }
                }
            }
            REQUIRE(window.size() == model.live.size());
        }
        // Every key, present or not, answers like the model (without inserting:
        // probe with a marker that reveals a wrong insert).
        for (std::uint64_t stream = 1; stream <= 3; ++stream) {
            for (std::uint64_t key = 0; key < 60; ++key) {
                auto it = model.live.find({stream, key});
                if (it == model.live.end()) continue;
                auto found = window.find_or_insert(core::StreamId{stream}, id_of(key),
                                                   core::Seq{999}, 0, core::TimestampNs{now});
                REQUIRE(found);
                CHECK(found->seq.value() == it->second.seq);
            }
        }
    }
}
