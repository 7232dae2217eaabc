// The data file's zero reserve: written at the file's end only, never over
// bytes in use, bounded by the map size; and a store that commits into the
// reserved zeros keeps every event, across a reopen.
//
// The reserve writes with O_DIRECT, which tmpfs before Linux 6.6 refuses
// (the reserve is then off). The unit tests look for a directory that
// allows it ($TMPDIR, then /var/tmp, then the build tree); where none does,
// or where a store fixture's $TMPDIR does not, they say so with a warning
// instead of passing silently.
#include <catch2/catch.hpp>

#include <sys/vfs.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "storage/file_reserve.h"
#include "tests/storage/store_fixture.h"
#include "tests/support/temp_dir.h"

using namespace spirit;
using storage::detail::FileReserve;

namespace {

constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = kib * kib;

std::string contents(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& path, std::size_t size, char fill) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string(size, fill);
}

// tmpfs before Linux 6.6 refuses O_DIRECT, and the reserve is then off.
bool direct_io_refused(const std::filesystem::path& dir) {
    struct statfs fs {};
    constexpr long tmpfs_magic = 0x01021994;
    return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == tmpfs_magic;
}

// A temp dir on a filesystem that takes O_DIRECT, if there is one.
std::unique_ptr<test::TempDir> direct_io_dir() {
    auto dir = std::make_unique<test::TempDir>();
    for (const std::filesystem::path base : {"/var/tmp", SPIRIT_BINARY_DIR}) {
        if (!direct_io_refused(dir->path())) break;
        std::error_code ec;
        if (std::filesystem::is_directory(base, ec)) {
            dir = std::make_unique<test::TempDir>("spirit-test", base);
        }
    }
    return dir;
}

// True (after a warning) when the reserve is off because O_DIRECT is.
bool skip_without_direct_io(const std::filesystem::path& dir) {
    if (!direct_io_refused(dir)) return false;
    WARN("skipped: " << dir << " is on tmpfs, which refuses O_DIRECT, and no other temp "
                     << "directory takes it; the zero reserve is off there");
    SUCCEED("skipped without O_DIRECT");
    return true;
}

bool zeros(const std::string& bytes, std::size_t from) {
    return bytes.find_first_not_of('\0', from) == std::string::npos;
}

}  // namespace

TEST_CASE("the reserve fills zeros after the bytes in use, up to its size", "[storage][unit]") {
    auto dir = direct_io_dir();
    if (skip_without_direct_io(dir->path())) return;
    const auto file = dir->path() / "data.mdb";
    write_file(file, 8 * kib, 'x');
    FileReserve reserve(file, 4 * mib, 1024 * mib);
    REQUIRE(reserve.enabled());
    reserve.wait_idle();
    CHECK(std::filesystem::file_size(file) == 8 * kib + 4 * mib);
    CHECK(reserve.ahead_of(8 * kib) == 4 * mib);
    std::string bytes = contents(file);
    CHECK(bytes.substr(0, 8 * kib) == std::string(8 * kib, 'x'));
    CHECK(zeros(bytes, 8 * kib));
}

TEST_CASE("no zeros are written into a write in progress or over bytes in use", "[storage][unit]") {
    auto dir = direct_io_dir();
    if (skip_without_direct_io(dir->path())) return;
    const auto file = dir->path() / "data.mdb";
    write_file(file, 8 * kib, 'x');
    FileReserve reserve(file, 4 * mib, 1024 * mib);
    REQUIRE(reserve.enabled());
    reserve.wait_idle();

    // The owner writes 3 MiB into the zeros, then more past them, all in
    // one write it cannot bound.
    const std::uint64_t used = 8 * kib + 5 * mib;
    reserve.begin_write(8 * kib, FileReserve::unbounded);
    {
        std::fstream out(file, std::ios::binary | std::ios::in | std::ios::out);
        out.seekp(static_cast<std::streamoff>(8 * kib));
        out << std::string(5 * mib, 'y');
    }
    // Told mid-write that the zeros ran out, the reserve still waits for
    // the write to end.
    reserve.end_write(used);
    reserve.begin_write(used, FileReserve::unbounded);
    const auto size_in_write = std::filesystem::file_size(file);
    // The zeros ran out, so a fill is due; wait_idle() returns once no fill
    // is in progress or wanted, so a reserve that ignored the write in
    // progress would have filled (and grown the file) by then. No sleep.
    reserve.wait_idle();
    CHECK(std::filesystem::file_size(file) == size_in_write);
    reserve.end_write(used);
    reserve.wait_idle();

    const std::string bytes = contents(file);
    CHECK(bytes.size() == used + 4 * mib);
    CHECK(bytes.substr(0, 8 * kib) == std::string(8 * kib, 'x'));
    CHECK(bytes.substr(8 * kib, 5 * mib) == std::string(5 * mib, 'y'));
    CHECK(zeros(bytes, used));
}

TEST_CASE("the reserve stops at the limit and is off at size 0", "[storage][unit]") {
    auto dir = direct_io_dir();
    if (skip_without_direct_io(dir->path())) return;
    const auto file = dir->path() / "data.mdb";
    write_file(file, 8 * kib, 'x');
    {
        FileReserve reserve(file, 4 * mib, 8 * kib + 512 * kib);
        reserve.wait_idle();
        CHECK(std::filesystem::file_size(file) == 8 * kib + 512 * kib);
    }
    write_file(file, 8 * kib, 'x');
    FileReserve off(file, 0, 1024 * mib);
    CHECK_FALSE(off.enabled());
    off.begin_write(8 * kib, 0);
    off.end_write(8 * kib);
    off.wait_idle();
    CHECK(std::filesystem::file_size(file) == 8 * kib);
    CHECK(off.ahead_of(8 * kib) == 0);
}

TEST_CASE("a store commits into the reserved zeros and keeps every event across a reopen",
          "[storage]") {
    // 4,000 events of about 1 KiB: several MiB, so LMDB's pages run through
    // reserved zeros many times over.
    auto fill = [](test::StoreFixture& f) {
        for (int i = 0; i < 40; ++i) {
            test::Batch b;
            for (int j = 0; j < 100; ++j) {
                b.add(std::to_string(i * 100 + j) +
                      std::string(1000, static_cast<char>('a' + j % 26)));
            }
            REQUIRE(f.append("s", std::move(b)));
        }
    };
    storage::StoreOptions with;
    with.preallocate_bytes = 2 * mib;
    test::StoreFixture reserved(with);
    fill(reserved);
    const bool on = !direct_io_refused(reserved.data_dir());
    if (on) {
        CHECK(reserved.store().stats().preallocated_bytes >= mib);
    } else {
        WARN(
            "$TMPDIR is on tmpfs (no O_DIRECT): the reserve is off, so only the content "
            "checks of this test ran");
    }

    storage::StoreOptions without;
    without.preallocate_bytes = 0;
    test::StoreFixture plain(without);
    fill(plain);
    CHECK(plain.store().stats().preallocated_bytes == 0);
    // Same content; the reserved file is longer by its zeros.
    if (on) {
        CHECK(std::filesystem::file_size(reserved.data_dir() / "data.mdb") >
              std::filesystem::file_size(plain.data_dir() / "data.mdb") + mib / 2);
    }

    reserved.reopen();
    fill(reserved);
    const auto payloads = reserved.payloads("s");
    REQUIRE(payloads.size() == 8000);
    for (std::size_t i = 0; i < payloads.size(); ++i) {
        const std::size_t n = i % 4000;
        CHECK(payloads[i] ==
              std::to_string(n) + std::string(1000, static_cast<char>('a' + (n % 100) % 26)));
    }
    auto report = reserved.store().verify("s");
    REQUIRE(report);
    CHECK_FALSE(report->first_break);
    CHECK(report->events_checked == 8000);
}

TEST_CASE("write transactions stay within the growth they announce to the reserve", "[storage]") {
    // Four producers on four streams at once, so groups mix streams whose
    // keys interleave (puts that are not appends), with ids, and sizes
    // from a few bytes to overflow pages.
    storage::StoreOptions options;
    options.preallocate_bytes = 4 * mib;
    test::StoreFixture f(options);
    const std::size_t sizes[] = {10, 300, 900, 3000, 20'000};
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t) {
        producers.emplace_back([&f, &sizes, t] {
            for (int i = 0; i < 150; ++i) {
                test::Batch b;
                for (int j = 0; j < 8; ++j) {
                    const std::size_t size = sizes[(i + j + t) % 5];
                    core::EventId id{};
                    id.bytes[0] = static_cast<std::byte>(t);
                    id.bytes[1] = static_cast<std::byte>(i);
                    id.bytes[2] = static_cast<std::byte>(i >> 8);
                    id.bytes[3] = static_cast<std::byte>(j);
                    b.add(std::string(size, static_cast<char>('a' + t)), id);
                }
                if (!f.append("stream-" + std::to_string(t), std::move(b))) std::abort();
            }
        });
    }
    for (auto& p : producers) p.join();
    // The helper ran (so the bounds were in force), and none was exceeded.
    if (direct_io_refused(f.data_dir())) {
        WARN(
            "$TMPDIR is on tmpfs (no O_DIRECT): the reserve is off, so its bounds were not "
            "in force");
    } else {
        CHECK(f.store().stats().preallocated_bytes >= mib);
    }
    CHECK(f.store().stats().preallocate_bound_misses == 0);
    for (int t = 0; t < 4; ++t) {
        auto report = f.store().verify("stream-" + std::to_string(t));
        REQUIRE(report);
        CHECK_FALSE(report->first_break);
        CHECK(report->events_checked == 150 * 8);
    }
}
