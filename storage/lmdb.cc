#include "storage/lmdb.h"

#include <fmt/format.h>

#include "core/assert.h"

namespace spirit::storage::detail {
namespace {

class LmdbCategory final : public std::error_category {
 public:
    const char* name() const noexcept override { return "lmdb"; }
    std::string message(int rc) const override { return mdb_strerror(rc); }
};

}  // namespace

const std::error_category& lmdb_category() noexcept {
    static const LmdbCategory category;
    return category;
}

core::Error lmdb_error(int rc, std::string what) {
    // LMDB returns errno values for system errors and its own codes (< 0)
    // otherwise; keep errno values in the generic category so callers can
    // compare them with std::errc.
    std::error_code code = rc > 0 ? std::error_code(rc, std::generic_category())
                                  : std::error_code(rc, lmdb_category());
    return core::Error{code, fmt::format("{}: {}", what, mdb_strerror(rc))};
}

Result<Env> Env::open(const EnvOptions& options) {
    MDB_env* env = nullptr;
    if (int rc = mdb_env_create(&env); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "creating the LMDB environment")};
    }
    Env owner(env);
    if (int rc = mdb_env_set_mapsize(env, options.map_bytes); rc != 0) {
        return core::Unexpected{
            lmdb_error(rc, fmt::format("setting map size {}", options.map_bytes))};
    }
    if (int rc = mdb_env_set_maxdbs(env, options.dbs_max); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "setting the number of databases")};
    }
    if (int rc = mdb_env_set_maxreaders(env, options.readers_max); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "setting the number of readers")};
    }
    // MDB_NOTLS: read transactions are not tied to threads. Never
    // MDB_WRITEMAP: a full disk would then kill the process with SIGBUS.
    unsigned flags = MDB_NOTLS;
    if (!options.sync_on_commit) flags |= MDB_NOSYNC;
    if (int rc = mdb_env_open(env, options.dir.c_str(), flags, 0600); rc != 0) {
        return core::Unexpected{lmdb_error(
            rc, fmt::format("opening the LMDB environment in {}", options.dir.string()))};
    }
    return owner;
}

Env::~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
}

Result<void> Env::sync() {
    if (int rc = mdb_env_sync(env_, 1); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "syncing the store to disk")};
    }
    return {};
}

std::uint64_t Env::used_bytes() const {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    MDB_stat stat;
    mdb_env_stat(env_, &stat);
    return (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

std::uint64_t Env::page_bytes() const {
    MDB_stat stat;
    mdb_env_stat(env_, &stat);
    return stat.ms_psize;
}

std::uint64_t Env::map_bytes() const {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    return info.me_mapsize;
}

std::optional<std::uint64_t> Txn::free_list_pages() const {
    MDB_stat stat;
    if (mdb_stat(txn_, 0 /* FREE_DBI */, &stat) != 0) return std::nullopt;
    return stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages;
}

Result<Txn> Txn::begin(const Env& env, Mode mode) {
    MDB_txn* txn = nullptr;
    unsigned flags = mode == Mode::read ? MDB_RDONLY : 0;
    if (int rc = mdb_txn_begin(env.get(), nullptr, flags, &txn); rc != 0) {
        return core::Unexpected{lmdb_error(rc, mode == Mode::read
                                                   ? "beginning a read transaction"
                                                   : "beginning a write transaction")};
    }
    return Txn(txn);
}

Result<void> Txn::commit() {
    SPIRIT_ASSERT(txn_ != nullptr);
    MDB_txn* txn = std::exchange(txn_, nullptr);
    if (int rc = mdb_txn_commit(txn); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "committing")};
    }
    return {};
}

void Txn::abort() noexcept {
    if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

Result<std::optional<ByteView>> Txn::get(MDB_dbi dbi, ByteView key) const {
    MDB_val k = to_val(key);
    MDB_val v;
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<ByteView>{};
    if (rc != 0) return core::Unexpected{lmdb_error(rc, "reading")};
    return std::optional<ByteView>{from_val(v)};
}

Result<Cursor> Cursor::open(const Txn& txn, MDB_dbi dbi) {
    MDB_cursor* c = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), dbi, &c); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "opening a cursor")};
    }
    return Cursor(c);
}

Result<std::optional<Cursor::Entry>> Cursor::step(MDB_cursor_op op) {
    MDB_val k{0, nullptr};
    MDB_val v{0, nullptr};
    int rc = mdb_cursor_get(cursor_, &k, &v, op);
    if (rc == MDB_NOTFOUND) return std::optional<Entry>{};
    if (rc != 0) return core::Unexpected{lmdb_error(rc, "moving a cursor")};
    return std::optional<Entry>{Entry{from_val(k), from_val(v)}};
}

Result<std::optional<Cursor::Entry>> Cursor::seek(ByteView key) {
    MDB_val k = to_val(key);
    MDB_val v{0, nullptr};
    int rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) return std::optional<Entry>{};
    if (rc != 0) return core::Unexpected{lmdb_error(rc, "seeking a cursor")};
    return std::optional<Entry>{Entry{from_val(k), from_val(v)}};
}

int Cursor::put(ByteView key, ByteView value, unsigned flags) {
    MDB_val k = to_val(key);
    MDB_val v = to_val(value);
    return mdb_cursor_put(cursor_, &k, &v, flags);
}

Result<void> Cursor::del() {
    if (int rc = mdb_cursor_del(cursor_, 0); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "deleting")};
    }
    return {};
}

Result<MDB_dbi> open_dbi(const Txn& txn, const char* name) {
    MDB_dbi dbi = 0;
    if (int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, &dbi); rc != 0) {
        return core::Unexpected{lmdb_error(rc, fmt::format("opening database '{}'", name))};
    }
    return dbi;
}

}  // namespace spirit::storage::detail
