#include "core/result.h"

namespace spirit::core {
namespace {

class SpiritCategory final : public std::error_category {
 public:
    const char* name() const noexcept override { return "spirit"; }
    std::string message(int value) const override { return errc_name(static_cast<errc>(value)); }
};

}  // namespace

const std::error_category& spirit_category() noexcept {
    static const SpiritCategory category;
    return category;
}

const char* errc_name(errc e) noexcept {
    switch (e) {
        case errc::malformed:
            return "malformed";
        case errc::limit_exceeded:
            return "limit_exceeded";
        case errc::invalid_argument:
            return "invalid_argument";
        case errc::invalid_stream_name:
            return "invalid_stream_name";
        case errc::unknown_message:
            return "unknown_message";
        case errc::unsupported_version:
            return "unsupported_version";
        case errc::unauthorized:
            return "unauthorized";
        case errc::not_found:
            return "not_found";
        case errc::already_exists:
            return "already_exists";
        case errc::expected_seq_mismatch:
            return "expected_seq_mismatch";
        case errc::not_master:
            return "not_master";
        case errc::overloaded:
            return "overloaded";
        case errc::shutting_down:
            return "shutting_down";
        case errc::timeout:
            return "timeout";
        case errc::busy:
            return "busy";
        case errc::connection_lost:
            return "connection_lost";
        case errc::unavailable:
            return "unavailable";
        case errc::stale_epoch:
            return "stale_epoch";
        case errc::hash_mismatch:
            return "hash_mismatch";
        case errc::corrupt:
            return "corrupt";
        case errc::bad_signature:
            return "bad_signature";
        case errc::storage_full:
            return "storage_full";
        case errc::storage_io:
            return "storage_io";
        case errc::storage_failed:
            return "storage_failed";
        case errc::config_invalid:
            return "config_invalid";
        case errc::internal:
            return "internal";
    }
    return "unknown_error";
}

std::string Error::message() const {
    if (code.category() != spirit_category()) {
        // Details of system, libuv and LMDB errors already carry their text.
        return detail.empty() ? code.message() : detail;
    }
    std::string name = errc_name(static_cast<errc>(code.value()));
    if (detail.empty()) return name;
    return detail + " (" + name + ")";
}

}  // namespace spirit::core
