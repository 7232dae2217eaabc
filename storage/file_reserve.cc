#include "storage/file_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace spirit::storage::detail {

namespace {

constexpr std::uint64_t chunk_bytes_max = std::uint64_t{1} << 20;
// O_DIRECT offsets, sizes and buffers must be aligned to the logical block
// size; 4 KiB covers every common device.
constexpr std::uint64_t align = 4096;

std::uint64_t round_up(std::uint64_t n) {
    return (n + align - 1) / align * align;
}

}  // namespace

void FileReserve::FreeDeleter::operator()(void* p) const {
    std::free(p);
}

FileReserve::FileReserve(const std::filesystem::path& file, std::uint64_t ahead_bytes,
                         std::uint64_t limit_bytes)
    : ahead_bytes_(ahead_bytes / align * align), limit_bytes_(limit_bytes / align * align) {
    if (ahead_bytes_ == 0) return;
    void* buffer = nullptr;
    if (::posix_memalign(&buffer, align, chunk_bytes_max) != 0) return;
    std::memset(buffer, 0, chunk_bytes_max);
    zeros_.reset(static_cast<std::byte*>(buffer));
    const int fd = ::open(file.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return;
    }
    fd_ = fd;
    end_ = static_cast<std::uint64_t>(st.st_size);
    used_ = end_;
    thread_ = std::thread([this] { run(); });
}

FileReserve::~FileReserve() {
    disable();
}

void FileReserve::begin_write(std::uint64_t used_bytes, std::uint64_t bound_bytes) {
    std::unique_lock lock(mutex_);
    if (fd_ < 0) return;
    const std::uint64_t limit = used_bytes + std::min(bound_bytes, unbounded);
    cv_.wait(lock, [&] { return !filling_ || limit <= fill_from_; });
    write_limit_ = limit;
}

void FileReserve::end_write(std::uint64_t used_bytes) {
    {
        std::lock_guard lock(mutex_);
        write_limit_ = 0;
        used_ = used_bytes;
    }
    cv_.notify_all();
}

void FileReserve::disable() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    cv_.notify_all();
}

std::uint64_t FileReserve::ahead_of(std::uint64_t used_bytes) const {
    std::lock_guard lock(mutex_);
    return fd_ >= 0 && end_ > used_bytes ? end_ - used_bytes : 0;
}

bool FileReserve::enabled() const {
    std::lock_guard lock(mutex_);
    return fd_ >= 0;
}

void FileReserve::wait_idle() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] {
        if (fd_ < 0) return true;
        auto [from, to] = next_fill();
        return !filling_ && from == to;
    });
}

std::pair<std::uint64_t, std::uint64_t> FileReserve::next_fill() const {
    // Right after the zeros, or after the bytes in use if LMDB extended the
    // file itself past them; and only past the limit of a transaction in
    // progress (otherwise after it ends), so the zeros have no holes.
    const std::uint64_t from = std::max(end_, round_up(used_));
    if (write_limit_ > from) return {from, from};
    const std::uint64_t to =
        std::min({used_ + ahead_bytes_, from + chunk_bytes_max, limit_bytes_}) / align * align;
    // Fill only once a whole chunk (or all that is missing) is wanted, so
    // the writer's small steps do not become many small writes.
    const std::uint64_t ahead = end_ > used_ ? end_ - used_ : 0;
    const bool low = ahead + std::min(chunk_bytes_max, ahead_bytes_) <= ahead_bytes_;
    if (!low || to <= from) return {from, from};
    return {from, to};
}

void FileReserve::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        std::pair<std::uint64_t, std::uint64_t> range;
        cv_.wait(lock, [&] {
            if (stopping_ || fd_ < 0) return true;
            range = next_fill();
            return range.first < range.second;
        });
        if (stopping_ || fd_ < 0) return;
        const auto [from, to] = range;
        filling_ = true;
        fill_from_ = from;
        lock.unlock();
        const std::uint64_t size = to - from;
        const ssize_t n = ::pwrite(fd_, zeros_.get(), size, static_cast<off_t>(from));
        lock.lock();
        filling_ = false;
        if (n == static_cast<ssize_t>(size)) {
            end_ = to;
        } else {
            // A full disk, or a file system that takes O_DIRECT opens but
            // not writes: stop; LMDB extends the file as it needs.
            ::close(fd_);
            fd_ = -1;
        }
        cv_.notify_all();
    }
}

}  // namespace spirit::storage::detail
