// storage/file_reserve.h: keeps the LMDB data file written with zeros ahead
// of the pages LMDB uses.
//
// Why: a commit that extends the file makes its fsync write the file's
// allocation metadata too (new blocks, the inode's size), on every commit.
// Pages that already hold written zeros are plain overwrites, so the fsync
// flushes only the pages themselves. Measured on ext4: group commits of 256
// events 23% shorter, and `spirit bench` 8 x 64 about 1.3 times the rate.
//
// How: after each commit the writer calls top_up() with LMDB's used size.
// When fewer than half of `ahead_bytes` of zeros lie past it, one chunk (at
// most 1 MiB, so a commit waits at most one chunk) is written at the file's
// end with O_DIRECT: the zeros never enter the page cache, so the next
// commit's fsync does not wait for them. Only the writer thread calls it, so
// LMDB (which writes in the writer thread's commits) never writes the same
// range at the same time. LMDB ignores the file's size beyond its last page.
//
// Best effort: on a file system without O_DIRECT (tmpfs) it does nothing,
// and a failed write (a full disk) turns it off for the rest of the process;
// LMDB then extends the file itself, as without a reserve.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

namespace spirit::storage::detail {

class FileReserve {
 public:
    // Disabled when ahead_bytes is 0 or `file` cannot be opened for direct
    // writes. The file is never extended past `limit_bytes` (the map size).
    FileReserve(const std::filesystem::path& file, std::uint64_t ahead_bytes,
                std::uint64_t limit_bytes);
    ~FileReserve();
    FileReserve(const FileReserve&) = delete;
    FileReserve& operator=(const FileReserve&) = delete;

    // Writes at most one chunk if the zeros past `used_bytes` run low.
    void top_up(std::uint64_t used_bytes);
    // Zero bytes now past `used_bytes` (0 when disabled).
    std::uint64_t ahead_of(std::uint64_t used_bytes) const;
    bool enabled() const { return fd_ >= 0; }

 private:
    struct FreeDeleter {
        void operator()(void* p) const;
    };
    int fd_ = -1;
    std::uint64_t ahead_bytes_ = 0;
    std::uint64_t limit_bytes_ = 0;
    std::uint64_t end_ = 0;  // the file's size
    std::unique_ptr<std::byte, FreeDeleter> zeros_;
};

}  // namespace spirit::storage::detail
