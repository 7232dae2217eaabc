// storage/lmdb.h: internal RAII over the LMDB C API. Only storage/ includes
// this header (and <lmdb.h>); the rest of the tree sees storage/store.h.
//
// Ownership and threads: Env outlives every transaction. A WriteTxn is
// created only by the writer thread; ReadTxns may be created on any thread
// (the environment is opened with MDB_NOTLS). Values read are views into the
// map, valid only until their transaction ends: callers copy what they keep.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "core/bytes.h"
#include "core/result.h"

namespace spirit::storage::detail {

using core::ByteView;
using core::Result;

const std::error_category& lmdb_category() noexcept;

// An Error from an LMDB return code, with what we were doing.
core::Error lmdb_error(int rc, std::string what);

inline MDB_val to_val(ByteView v) {
    return MDB_val{v.size(), const_cast<std::byte*>(v.data())};
}
inline ByteView from_val(const MDB_val& v) {
    return {static_cast<const std::byte*>(v.mv_data), v.mv_size};
}

struct EnvOptions {
    std::filesystem::path dir;
    std::uint64_t map_bytes = 0;
    unsigned dbs_max = 0;
    unsigned readers_max = 0;
    bool sync_on_commit = true;  // false: MDB_NOSYNC, the writer syncs on its own schedule
};

class Env {
 public:
    static Result<Env> open(const EnvOptions& options);
    Env(Env&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
    Env& operator=(Env&&) = delete;
    Env(const Env&) = delete;
    ~Env();

    MDB_env* get() const { return env_; }
    // Flushes the OS buffers to disk (fdatasync). For MDB_NOSYNC modes.
    [[nodiscard]] Result<void> sync();
    std::uint64_t map_bytes() const;
    // Bytes of the data file LMDB uses: up to its last page.
    std::uint64_t used_bytes() const;
    // LMDB's page size for this environment.
    std::uint64_t page_bytes() const;

 private:
    explicit Env(MDB_env* env) : env_(env) {}
    MDB_env* env_;
};

class Txn {
 public:
    enum class Mode { read, write };
    static Result<Txn> begin(const Env& env, Mode mode);
    // Pages of LMDB's free-list database (records of free pages) as this
    // transaction sees it; nullopt if LMDB cannot say.
    std::optional<std::uint64_t> free_list_pages() const;
    Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}
    Txn& operator=(Txn&& other) noexcept {
        if (this != &other) {
            abort();
            txn_ = std::exchange(other.txn_, nullptr);
        }
        return *this;
    }
    Txn(const Txn&) = delete;
    ~Txn() { abort(); }

    MDB_txn* get() const { return txn_; }
    [[nodiscard]] Result<void> commit();
    void abort() noexcept;

    // Point lookup; nullopt when absent. The view dies with the transaction.
    Result<std::optional<ByteView>> get(MDB_dbi dbi, ByteView key) const;

 private:
    explicit Txn(MDB_txn* txn) : txn_(txn) {}
    MDB_txn* txn_;
};

// REQUIRES: declared after (destroyed before) the Txn it was opened in.
class Cursor {
 public:
    static Result<Cursor> open(const Txn& txn, MDB_dbi dbi);
    Cursor(Cursor&& other) noexcept : cursor_(std::exchange(other.cursor_, nullptr)) {}
    Cursor& operator=(Cursor&&) = delete;
    Cursor(const Cursor&) = delete;
    ~Cursor() {
        if (cursor_ != nullptr) mdb_cursor_close(cursor_);
    }

    using Entry = std::pair<ByteView, ByteView>;  // key, value
    // MDB_FIRST, MDB_LAST, MDB_NEXT, MDB_PREV, MDB_GET_CURRENT.
    Result<std::optional<Entry>> step(MDB_cursor_op op);
    // First entry with key >= `key` (MDB_SET_RANGE).
    Result<std::optional<Entry>> seek(ByteView key);
    // mdb_cursor_put; returns the raw rc so the caller can classify it.
    int put(ByteView key, ByteView value, unsigned flags);
    [[nodiscard]] Result<void> del();

 private:
    explicit Cursor(MDB_cursor* c) : cursor_(c) {}
    MDB_cursor* cursor_;
};

// Opens (creating) a named database in a write transaction.
Result<MDB_dbi> open_dbi(const Txn& txn, const char* name);

}  // namespace spirit::storage::detail
