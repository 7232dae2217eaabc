// spirit_storage_bench: appends/s through the stream store (sequencing,
// BLAKE2b chain hash, msgpack envelope, group commit) next to raw LMDB puts
// of the same key and value sizes, in the same run, by the same binary.
//
//   spirit_storage_bench [--seconds S] [--dir DIR] [--payload BYTES]
//
// For each sync mode (always, none) and batch size (1, 64, 1024):
//   raw      one MDB_APPEND put per event, `batch` puts per transaction, commit
//            (fsync in `always`); no hashing, no encoding;
//   store    appends of `batch` events with two appends in flight, so the next
//            batch is hashed while the writer puts and commits the previous
//            one, and each commit holds one batch, as the raw loop's does;
//   store+   the same with 16 appends in flight: group commit merges them.
//   replicated  append_replicated of envelopes a master store sealed before
//            the clock starts (read back into memory), `batch` per request,
//            two requests in flight: a slave's write path (verify, copy,
//            put, and the event ids it records for the idempotency window).
// Each row prints events/s, payload MB/s, fsyncs (commits) per 1,000
// events, the store's rate as a ratio of raw, and for the store's rows the
// process's CPU time per event (all threads), which other load on the
// machine disturbs less than the rate.
#include <lmdb.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "storage/store.h"
#include "tests/support/commit_waiter.h"

using namespace spirit;
using Clock = std::chrono::steady_clock;

namespace {

struct Rate {
    double events_per_s = 0;
    double mb_per_s = 0;
    double syncs_per_1000 = 0;
    double cpu_us_per_event = 0;  // process CPU (every thread), where measured
};

// User + system CPU of the whole process so far, in microseconds.
double process_cpu_us() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto us = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
    };
    return us(u.ru_utime) + us(u.ru_stime);
}

struct Settings {
    double seconds = 2.0;
    std::filesystem::path dir = "/tmp/spirit-bench";
    std::size_t payload_bytes = 100;
    std::string only;  // run only rows whose "what" contains this
    std::string sync_only;
};

void die(const char* what, int rc) {
    std::fprintf(stderr, "%s: %s\n", what, mdb_strerror(rc));
    std::exit(1);
}

std::uint64_t events_cap(std::size_t batch, storage::SyncMode mode) {
    // Enough to run for the whole measurement on a fast disk, never unbounded.
    if (mode == storage::SyncMode::none) return 20'000'000;
    return batch == 1 ? 200'000 : 10'000'000;
}

Rate raw_lmdb(const Settings& s, storage::SyncMode mode, std::size_t batch,
              std::size_t value_bytes) {
    std::filesystem::path dir = s.dir / "raw";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, std::size_t{32} << 30);
    mdb_env_set_maxdbs(env, 8);
    unsigned flags = MDB_NOTLS | (mode == storage::SyncMode::none ? MDB_NOSYNC : 0);
    if (int rc = mdb_env_open(env, dir.c_str(), flags, 0600); rc != 0) die("mdb_env_open", rc);
    MDB_txn* txn = nullptr;
    MDB_dbi dbi = 0;
    mdb_txn_begin(env, nullptr, 0, &txn);
    mdb_dbi_open(txn, "events", MDB_CREATE, &dbi);
    mdb_txn_commit(txn);

    std::vector<char> value(value_bytes, 'v');
    unsigned char key[16] = {0};
    key[7] = 1;  // stream id 1
    std::uint64_t seq = 0;
    std::uint64_t commits = 0;
    const std::uint64_t cap = events_cap(batch, mode);
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(s.seconds);
    while (Clock::now() < deadline && seq < cap) {
        if (int rc = mdb_txn_begin(env, nullptr, 0, &txn); rc != 0) die("mdb_txn_begin", rc);
        for (std::size_t i = 0; i < batch; ++i) {
            ++seq;
            for (int b = 0; b < 8; ++b) key[15 - b] = static_cast<unsigned char>(seq >> (8 * b));
            MDB_val k{sizeof key, key};
            MDB_val v{value.size(), value.data()};
            if (int rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND); rc != 0) die("mdb_put", rc);
        }
        if (int rc = mdb_txn_commit(txn); rc != 0) die("mdb_txn_commit", rc);
        ++commits;
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    mdb_env_close(env);
    std::filesystem::remove_all(dir);
    double events = static_cast<double>(seq);
    return Rate{
        events / elapsed, events * static_cast<double>(s.payload_bytes) / elapsed / 1e6,
        mode == storage::SyncMode::always ? static_cast<double>(commits) * 1000.0 / events : 0.0};
}

Rate store_appends(const Settings& s, storage::SyncMode mode, std::size_t batch, int in_flight_max,
                   bool producer_ids) {
    std::filesystem::path dir = s.dir / "store";
    std::filesystem::remove_all(dir);
    storage::StoreOptions options;
    options.data_dir = dir;
    options.sync_mode = mode;
    options.map_bytes = std::size_t{32} << 30;
    auto opened = storage::Store::open(options);
    if (!opened) {
        std::fprintf(stderr, "open: %s\n", opened.error().message().c_str());
        std::exit(1);
    }
    storage::Store& store = **opened;
    test::CommitWaiter commits(store);

    const std::string payload(s.payload_bytes, 'p');
    std::vector<core::EventDraft> events(
        batch, core::EventDraft{std::nullopt, "bench", {}, core::as_bytes(payload)});
    std::uint64_t id_counter = 0;
    int in_flight = 0;
    std::uint64_t acked = 0;
    std::uint64_t submitted = 0;
    const std::uint64_t cap = events_cap(batch, mode);
    const double cpu_start = process_cpu_us();
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(s.seconds);
    bool stop = false;
    while (!stop || in_flight > 0) {
        if (!stop && (Clock::now() >= deadline || submitted >= cap)) stop = true;
        while (!stop && in_flight < in_flight_max) {
            if (producer_ids) {
                for (auto& e : events) {
                    core::EventId id;
                    core::store_be64(id.bytes.data(), 0xb5);
                    core::store_be64(id.bytes.data() + 8, ++id_counter);
                    e.id = id;
                }
            }
            auto r = store.append({.stream = "bench", .events = events},
                                  [&](core::Result<storage::AppendResult> result) {
                                      if (!result) {
                                          std::fprintf(stderr, "append: %s\n",
                                                       result.error().message().c_str());
                                          std::exit(1);
                                      }
                                      --in_flight;
                                      acked += result->stored;
                                  });
            if (!r) {
                std::fprintf(stderr, "append: %s\n", r.error().message().c_str());
                std::exit(1);
            }
            ++in_flight;
            submitted += batch;
        }
        if (in_flight == 0) break;
        commits.wait_and_drain();
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_us = process_cpu_us() - cpu_start;
    storage::StoreStats stats = store.stats();
    opened->reset();
    std::filesystem::remove_all(dir);
    double events_done = static_cast<double>(acked);
    return Rate{
        events_done / elapsed, events_done * static_cast<double>(s.payload_bytes) / elapsed / 1e6,
        mode == storage::SyncMode::always ? static_cast<double>(stats.syncs) * 1000.0 / events_done
                                          : 0.0,
        cpu_us / events_done};
}

// Envelopes of one stream sealed by a master store, in seq order.
std::vector<core::Bytes> sealed_envelopes(const Settings& s, std::uint64_t count) {
    std::filesystem::path dir = s.dir / "master";
    std::filesystem::remove_all(dir);
    storage::StoreOptions options;
    options.data_dir = dir;
    options.sync_mode = storage::SyncMode::none;
    options.map_bytes = std::size_t{32} << 30;
    auto opened = storage::Store::open(options);
    if (!opened) {
        std::fprintf(stderr, "open: %s\n", opened.error().message().c_str());
        std::exit(1);
    }
    storage::Store& store = **opened;
    const std::string payload(s.payload_bytes, 'p');
    std::vector<core::EventDraft> events(
        1024, core::EventDraft{std::nullopt, "bench", {}, core::as_bytes(payload)});
    for (std::uint64_t n = 0; n < count; n += events.size()) {
        events.resize(std::min<std::uint64_t>(events.size(), count - n));
        auto r = store.append_sync({.stream = "bench", .events = events});
        if (!r) {
            std::fprintf(stderr, "append: %s\n", r.error().message().c_str());
            std::exit(1);
        }
    }
    std::vector<core::Bytes> out;
    out.reserve(count);
    for (core::Seq next{1}; out.size() < count;) {
        auto r = store.read("bench", {.from_seq = next, .events_max = 65'536},
                            [&](const core::EnvelopeView&, core::ByteView encoded) {
                                out.emplace_back(encoded.begin(), encoded.end());
                                return storage::Visit::next;
                            });
        if (!r || r->events == 0) {
            std::fprintf(stderr, "read: %s\n", r ? "short" : r.error().message().c_str());
            std::exit(1);
        }
        next = r->next_seq;
    }
    opened->reset();
    std::filesystem::remove_all(dir);
    return out;
}

Rate replicated_appends(const Settings& s, storage::SyncMode mode, std::size_t batch,
                        const std::vector<core::Bytes>& envelopes) {
    std::filesystem::path dir = s.dir / "slave";
    std::filesystem::remove_all(dir);
    storage::StoreOptions options;
    options.data_dir = dir;
    options.sync_mode = mode;
    options.map_bytes = std::size_t{32} << 30;
    auto opened = storage::Store::open(options);
    if (!opened) {
        std::fprintf(stderr, "open: %s\n", opened.error().message().c_str());
        std::exit(1);
    }
    storage::Store& store = **opened;
    test::CommitWaiter commits(store);
    std::vector<core::ByteView> views(envelopes.begin(), envelopes.end());
    std::vector<core::Digest> hashes;
    hashes.reserve(envelopes.size());
    for (const core::Bytes& e : envelopes) hashes.push_back(core::decode_envelope(e)->hash);

    int in_flight = 0;
    std::uint64_t acked = 0;
    std::uint64_t submitted = 0;
    const double cpu_start = process_cpu_us();
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(s.seconds);
    bool stop = false;
    while (!stop || in_flight > 0) {
        if (!stop && (Clock::now() >= deadline || submitted >= envelopes.size())) stop = true;
        while (!stop && in_flight < 2 && submitted < envelopes.size()) {
            const std::size_t n = std::min<std::size_t>(batch, envelopes.size() - submitted);
            storage::ReplicatedAppend request{
                .stream = "bench",
                .prev_seq = core::Seq{submitted},
                .prev_hash = submitted == 0 ? core::Digest{} : hashes[submitted - 1],
                .envelopes = std::span<const core::ByteView>(views).subspan(submitted, n)};
            auto r = store.append_replicated(request, [&](core::Result<storage::AppendResult> res) {
                if (!res) {
                    std::fprintf(stderr, "append_replicated: %s\n", res.error().message().c_str());
                    std::exit(1);
                }
                --in_flight;
                acked += res->stored;
            });
            if (!r) {
                std::fprintf(stderr, "append_replicated: %s\n", r.error().message().c_str());
                std::exit(1);
            }
            ++in_flight;
            submitted += n;
        }
        if (in_flight == 0) break;
        commits.wait_and_drain();
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu_us = process_cpu_us() - cpu_start;
    storage::StoreStats stats = store.stats();
    opened->reset();
    std::filesystem::remove_all(dir);
    double events_done = static_cast<double>(acked);
    return Rate{
        events_done / elapsed, events_done * static_cast<double>(s.payload_bytes) / elapsed / 1e6,
        mode == storage::SyncMode::always ? static_cast<double>(stats.syncs) * 1000.0 / events_done
                                          : 0.0,
        cpu_us / events_done};
}

std::size_t envelope_bytes(std::size_t payload_bytes) {
    const std::string payload(payload_bytes, 'p');
    core::EnvelopeView v{"bench",
                         core::Seq{1'000'000},
                         core::Epoch{1},
                         core::TimestampNs{1ULL << 60},
                         core::EventId{},
                         "bench",
                         {},
                         core::as_bytes(payload),
                         {}};
    return core::sealed_envelope_size(v);
}

double hash_ns(std::size_t value_bytes) {
    std::vector<std::byte> bytes(value_bytes, std::byte{1});
    core::Digest prev;
    const int rounds = 200'000;
    auto start = Clock::now();
    for (int i = 0; i < rounds; ++i) {
        core::Blake2b256 h;
        h.update(core::ByteView(prev.bytes));
        h.update(bytes);
        prev = h.finish();
    }
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / rounds;
}

void print_row(const char* mode, std::size_t batch, const char* what, const Rate& r,
               const Rate* base) {
    std::printf("%-7s %6zu  %-22s %12.0f %9.1f %10.2f", mode, batch, what, r.events_per_s,
                r.mb_per_s, r.syncs_per_1000);
    if (base != nullptr) std::printf("   %5.2fx", r.events_per_s / base->events_per_s);
    if (r.cpu_us_per_event > 0) std::printf("   %6.2f cpu us/event", r.cpu_us_per_event);
    std::printf("\n");
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Settings s;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--seconds") {
            s.seconds = std::stod(argv[i + 1]);
        } else if (flag == "--dir") {
            s.dir = argv[i + 1];
        } else if (flag == "--payload") {
            s.payload_bytes = std::stoul(argv[i + 1]);
        } else if (flag == "--only") {
            s.only = argv[i + 1];
        } else if (flag == "--sync") {
            s.sync_only = argv[i + 1];
        } else {
            std::fprintf(stderr,
                         "usage: %s [--seconds S] [--dir DIR] [--payload BYTES] [--only TEXT] "
                         "[--sync always|none]\n",
                         argv[0]);
            return 2;
        }
    }
    if (!core::init_crypto()) return 1;
    const std::size_t value_bytes = envelope_bytes(s.payload_bytes);
    std::printf("payload %zu bytes, envelope %zu bytes, key 16 bytes; %.1f s per row; dir %s\n",
                s.payload_bytes, value_bytes, s.seconds, s.dir.c_str());
    std::printf("BLAKE2b-256 of one envelope and the previous hash: %.0f ns\n\n",
                hash_ns(value_bytes));
    std::printf("%-7s %6s  %-22s %12s %9s %10s   %s\n", "sync", "batch", "what", "events/s", "MB/s",
                "fsync/1k", "vs raw");
    struct Variant {
        const char* what;
        int in_flight;
        bool producer_ids;
    };
    const Variant variants[] = {{"store, 2 in flight", 2, false},
                                {"store, 16 in flight", 16, false},
                                {"store, 2, producer ids", 2, true}};
    for (auto mode : {storage::SyncMode::always, storage::SyncMode::none}) {
        const char* name = mode == storage::SyncMode::always ? "always" : "none";
        if (!s.sync_only.empty() && s.sync_only != name) continue;
        for (std::size_t batch : {std::size_t{1}, std::size_t{64}, std::size_t{1024}}) {
            Rate raw = raw_lmdb(s, mode, batch, value_bytes);
            print_row(name, batch, "raw LMDB put", raw, nullptr);
            for (const Variant& v : variants) {
                if (!s.only.empty() && std::string(v.what).find(s.only) == std::string::npos)
                    continue;
                print_row(name, batch, v.what,
                          store_appends(s, mode, batch, v.in_flight, v.producer_ids), &raw);
            }
            const char* replicated = "replicated, 2 in flight";
            if (s.only.empty() || std::string(replicated).find(s.only) != std::string::npos) {
                // Enough envelopes for the whole measurement at the rates seen here.
                const std::uint64_t count = std::min<std::uint64_t>(
                    events_cap(batch, mode),
                    static_cast<std::uint64_t>(s.seconds * (batch == 1 ? 20'000 : 1'500'000)));
                auto envelopes = sealed_envelopes(s, std::max<std::uint64_t>(count, batch));
                print_row(name, batch, replicated, replicated_appends(s, mode, batch, envelopes),
                          &raw);
            }
        }
    }
    std::filesystem::remove_all(s.dir);
    return 0;
}
