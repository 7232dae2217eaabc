// Hot backup and its restore, and the store's gauges: the compacting copy
// (copy_to), its size estimate, the space the store has, the writer's
// commit histograms, and restore_copy, which installs a copy as a data
// dir's store.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "storage/keys.h"
#include "storage/store.h"
#include "storage/store_impl.h"

namespace spirit::storage {

using core::errc;
using core::Result;

namespace {

core::Error errno_error(int e, std::string what) {
    return core::Error{std::error_code(e, std::generic_category()),
                       fmt::format("{}: {}", what, std::strerror(e))};
}

// Closes a file descriptor when it goes out of scope.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Whether `copy` is an LMDB data file holding a spirit store of this
// format; invalid_argument naming it if not.
Result<void> check_copy(const std::filesystem::path& copy) {
    auto refuse = [&](std::string_view why) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("{} is not a spirit backup: {}", copy.string(), why));
    };
    MDB_env* env = nullptr;
    if (int rc = mdb_env_create(&env); rc != 0) {
        return core::Unexpected{detail::lmdb_error(rc, "creating an LMDB environment")};
    }
    struct EnvCloser {
        MDB_env* env;
        ~EnvCloser() { mdb_env_close(env); }
    } closer{env};
    mdb_env_set_maxdbs(env, 16);
    if (int rc = mdb_env_open(env, copy.c_str(), MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
        rc != 0) {
        return refuse(fmt::format("LMDB cannot open it ({})", mdb_strerror(rc)));
    }
    MDB_txn* txn = nullptr;
    if (int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn); rc != 0) {
        return refuse(fmt::format("LMDB cannot read it ({})", mdb_strerror(rc)));
    }
    struct TxnAborter {
        MDB_txn* txn;
        ~TxnAborter() { mdb_txn_abort(txn); }
    } aborter{txn};
    MDB_dbi node = 0;
    if (int rc = mdb_dbi_open(txn, "node", 0, &node); rc != 0) {
        return refuse(fmt::format("it has no node database ({})", mdb_strerror(rc)));
    }
    MDB_val key = detail::to_val(core::as_bytes(detail::node_key_format));
    MDB_val value{};
    if (int rc = mdb_get(txn, node, &key, &value); rc != 0) {
        return refuse(fmt::format("it records no store format ({})", mdb_strerror(rc)));
    }
    const std::string_view format = core::as_chars(detail::from_val(value));
    if (format != detail::store_format) {
        return refuse(fmt::format("it holds format \"{}\"; this spiritd reads \"{}\"", format,
                                  detail::store_format));
    }
    return {};
}

// Copies `from` into a new file `to` (which must not exist) and fsyncs it.
Result<std::uint64_t> copy_into_new_file(const std::filesystem::path& from,
                                         const std::filesystem::path& to) {
    Fd in{::open(from.c_str(), O_RDONLY | O_CLOEXEC)};
    if (in.fd < 0) return core::Unexpected{errno_error(errno, "opening " + from.string())};
    Fd out{::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (out.fd < 0) return core::Unexpected{errno_error(errno, "creating " + to.string())};
    std::vector<char> buffer(std::size_t{1} << 20);
    std::uint64_t total = 0;
    while (true) {
        const ssize_t got = ::read(in.fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return core::Unexpected{errno_error(errno, "reading " + from.string())};
        if (got == 0) break;
        for (ssize_t at = 0; at < got;) {
            const ssize_t put =
                ::write(out.fd, buffer.data() + at, static_cast<std::size_t>(got - at));
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) return core::Unexpected{errno_error(errno, "writing " + to.string())};
            at += put;
        }
        total += static_cast<std::uint64_t>(got);
    }
    if (::fsync(out.fd) != 0) return core::Unexpected{errno_error(errno, "syncing " + to.string())};
    return total;
}

Result<void> sync_dir(const std::filesystem::path& dir) {
    Fd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (fd.fd < 0 || ::fsync(fd.fd) != 0) {
        return core::Unexpected{errno_error(errno, "syncing directory " + dir.string())};
    }
    return {};
}

}  // namespace

Result<RestoredCopy> restore_copy(const std::filesystem::path& copy,
                                  const std::filesystem::path& data_dir) {
    SPIRIT_TRY(check_copy(copy));
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
        return core::make_error(
            ec, fmt::format("creating data dir {}: {}", data_dir.string(), ec.message()));
    }
    const std::filesystem::path lock_path = data_dir / "spirit.lock";
    Fd lock{::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)};
    if (lock.fd < 0) return core::Unexpected{errno_error(errno, "opening " + lock_path.string())};
    if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return core::make_error(
                errc::busy,
                fmt::format("data dir {} is in use by another process", data_dir.string()));
        }
        return core::Unexpected{errno_error(errno, "locking " + lock_path.string())};
    }
    RestoredCopy restored{data_dir / "data.mdb", 0};
    if (std::filesystem::exists(restored.data_file, ec)) {
        return core::make_error(errc::already_exists,
                                fmt::format("data dir {} already holds a store ({}); a restore "
                                            "never overwrites one: move it away first",
                                            data_dir.string(), restored.data_file.string()));
    }
    const std::filesystem::path partial = data_dir / "data.mdb.restoring";
    std::filesystem::remove(partial, ec);  // left by a restore that was interrupted
    auto bytes = copy_into_new_file(copy, partial);
    if (!bytes) {
        std::filesystem::remove(partial, ec);
        return core::Unexpected{bytes.error()};
    }
    // LMDB's lock file describes readers of the old data file, if any: gone.
    std::filesystem::remove(data_dir / "lock.mdb", ec);
    if (::rename(partial.c_str(), restored.data_file.c_str()) != 0) {
        const int e = errno;
        std::filesystem::remove(partial, ec);
        return core::Unexpected{errno_error(e, "renaming " + partial.string())};
    }
    SPIRIT_TRY(sync_dir(data_dir));
    restored.bytes = *bytes;
    return restored;
}

CommitMetrics Store::commit_metrics() const {
    return impl_->writer().commit_metrics();
}

Result<StoreSpace> Store::space() const {
    StoreSpace s;
    s.map_bytes = impl_->env_.map_bytes();
    s.used_bytes = impl_->env_.used_bytes();
    const std::filesystem::path dir = impl_->options_.data_dir;
    struct stat file {};
    if (::stat((dir / "data.mdb").c_str(), &file) != 0) {
        return core::Unexpected{errno_error(errno, "stat " + (dir / "data.mdb").string())};
    }
    s.file_bytes = static_cast<std::uint64_t>(file.st_size);
    struct statvfs disk {};
    if (::statvfs(dir.c_str(), &disk) != 0) {
        return core::Unexpected{errno_error(errno, "statvfs " + dir.string())};
    }
    s.disk_free_bytes = static_cast<std::uint64_t>(disk.f_bavail) * disk.f_frsize;
    s.disk_bytes = static_cast<std::uint64_t>(disk.f_blocks) * disk.f_frsize;
    return s;
}

Result<void> Store::copy_to(int fd) const {
    if (int rc = mdb_env_copyfd2(impl_->env_.get(), fd, MDB_CP_COMPACT); rc != 0) {
        return core::Unexpected{
            detail::lmdb_error(rc, fmt::format("writing the compacted copy to fd {}", fd))};
    }
    return {};
}

Result<std::uint64_t> Store::copy_bytes_estimate() const {
    auto txn = detail::Txn::begin(impl_->env_, detail::Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    const detail::Dbis& d = impl_->dbis_;
    std::uint64_t pages = 2;  // the meta pages
    for (MDB_dbi dbi : {MDB_dbi{1} /* the main database */, d.streams, d.events, d.ids, d.cursors,
                        d.topology, d.quarantine, d.node, d.outbox}) {
        MDB_stat stat;
        if (int rc = mdb_stat(txn->get(), dbi, &stat); rc != 0) {
            return core::Unexpected{detail::lmdb_error(rc, "reading database sizes")};
        }
        pages += stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
    }
    return pages * impl_->env_.page_bytes();
}

}  // namespace spirit::storage
