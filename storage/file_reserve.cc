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
}

FileReserve::~FileReserve() {
    if (fd_ >= 0) ::close(fd_);
}

std::uint64_t FileReserve::ahead_of(std::uint64_t used_bytes) const {
    return fd_ >= 0 && end_ > used_bytes ? end_ - used_bytes : 0;
}

void FileReserve::top_up(std::uint64_t used_bytes) {
    if (fd_ < 0 || ahead_of(used_bytes) >= ahead_bytes_ / 2) return;
    // LMDB extended the file itself past what was reserved.
    const std::uint64_t from = std::max(end_, (used_bytes + align - 1) / align * align);
    const std::uint64_t to =
        std::min({used_bytes + ahead_bytes_, from + chunk_bytes_max, limit_bytes_});
    if (to <= from) return;
    const std::uint64_t size = (to - from) / align * align;
    if (size == 0) return;
    const ssize_t n = ::pwrite(fd_, zeros_.get(), size, static_cast<off_t>(from));
    if (n != static_cast<ssize_t>(size)) {
        // A full disk or a file system that takes O_DIRECT opens but not
        // writes: stop; LMDB extends the file as it needs.
        ::close(fd_);
        fd_ = -1;
        return;
    }
    end_ = from + size;
}

}  // namespace spirit::storage::detail
