// tests/storage/raw_lmdb.h: reads and plants raw values in a closed store's
// LMDB environment, for bytes the store itself never writes (an old record
// version, an envelope that rotted). The store must be closed meanwhile.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>

#include "core/bytes.h"
#include "storage/lmdb.h"

namespace spirit::test {

class RawLmdb {
 public:
    explicit RawLmdb(const std::filesystem::path& data_dir) {
        auto env = storage::detail::Env::open({.dir = data_dir,
                                               .map_bytes = std::uint64_t{1} << 30,
                                               .dbs_max = 16,
                                               .readers_max = 8});
        if (!env) FAIL("open: " << env.error().message());
        env_.emplace(std::move(*env));
    }

    std::optional<core::Bytes> get(const char* db, core::ByteView key) {
        auto txn = storage::detail::Txn::begin(*env_, storage::detail::Txn::Mode::write);
        REQUIRE(txn);
        auto dbi = storage::detail::open_dbi(*txn, db);
        REQUIRE(dbi);
        auto value = txn->get(*dbi, key);
        REQUIRE(value);
        if (!*value) return std::nullopt;
        return core::Bytes((*value)->begin(), (*value)->end());
    }

    void put(const char* db, core::ByteView key, core::ByteView value) {
        auto txn = storage::detail::Txn::begin(*env_, storage::detail::Txn::Mode::write);
        REQUIRE(txn);
        auto dbi = storage::detail::open_dbi(*txn, db);
        REQUIRE(dbi);
        MDB_val k = storage::detail::to_val(key);
        MDB_val v = storage::detail::to_val(value);
        REQUIRE(mdb_put(txn->get(), *dbi, &k, &v, 0) == 0);
        REQUIRE(txn->commit());
    }

 private:
    std::optional<storage::detail::Env> env_;
};

}  // namespace spirit::test
