#include "storage/stream_record.h"

#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"

namespace spirit::storage::detail {
namespace {

// On disk: never renumber. 1: 148 bytes, no confirmed epoch; 2: 156 bytes.
constexpr std::byte record_v1{1};
constexpr std::byte record_v2{2};

class Out {
 public:
    explicit Out(core::Bytes& b) : b_(b) {}
    void u8(std::uint8_t v) { b_.push_back(static_cast<std::byte>(v)); }
    void u64(std::uint64_t v) {
        std::size_t at = b_.size();
        b_.resize(at + 8);
        core::store_be64(b_.data() + at, v);
    }
    void digest(const core::Digest& d) { b_.insert(b_.end(), d.bytes.begin(), d.bytes.end()); }

 private:
    core::Bytes& b_;
};

class In {
 public:
    explicit In(core::ByteView b) : b_(b) {}
    std::uint8_t u8() { return static_cast<std::uint8_t>(b_[at_++]); }
    std::uint64_t u64() {
        std::uint64_t v = core::load_be64(b_.data() + at_);
        at_ += 8;
        return v;
    }
    core::Digest digest() {
        core::Digest d;
        std::memcpy(d.bytes.data(), b_.data() + at_, d.bytes.size());
        at_ += d.bytes.size();
        return d;
    }

 private:
    core::ByteView b_;
    std::size_t at_ = 1;  // after the version byte
};

}  // namespace

core::Bytes encode_stream_record(const StreamRecord& r) {
    core::Bytes b;
    b.reserve(stream_record_bytes);
    b.push_back(record_v2);
    Out out(b);
    out.u64(r.id.value());
    out.u8(static_cast<std::uint8_t>(r.policy.redundancy));
    out.u8(static_cast<std::uint8_t>(r.policy.acks.kind));
    out.u8(r.policy.acks.count);
    out.u64(r.policy.retention.events_max);
    out.u64(r.policy.retention.bytes_max);
    out.u64(r.policy.retention.age_ms_max);
    out.u64(r.first_seq.value());
    out.u64(r.last_seq.value());
    out.u64(r.last_epoch.value());
    out.u64(r.last_timestamp_ns.value());
    out.digest(r.last_hash);
    out.digest(r.base_hash);
    out.u64(r.event_bytes);
    out.u64(r.created_ns.value());
    out.u64(r.confirmed_epoch.value());
    SPIRIT_ASSERT(b.size() == stream_record_bytes);
    return b;
}

core::Result<StreamRecord> decode_stream_record(core::ByteView bytes, std::string_view stream) {
    const bool v1 = bytes.size() == stream_record_v1_bytes && bytes[0] == record_v1;
    const bool v2 = bytes.size() == stream_record_bytes && bytes[0] == record_v2;
    if (!v1 && !v2) {
        return core::make_error(
            core::errc::corrupt,
            fmt::format("stream {}: stored record of {} bytes, version {} is neither a v1 record "
                        "of {} bytes nor a v2 record of {} bytes",
                        stream, bytes.size(), bytes.empty() ? -1 : static_cast<int>(bytes[0]),
                        stream_record_v1_bytes, stream_record_bytes));
    }
    In in(bytes);
    StreamRecord r;
    r.id = core::StreamId{in.u64()};
    std::uint8_t redundancy = in.u8();
    std::uint8_t acks_kind = in.u8();
    r.policy.acks.count = in.u8();
    if (redundancy > 1 || acks_kind > 2) {
        return core::make_error(core::errc::corrupt,
                                fmt::format("stream {}: stored policy has unknown values {}/{}",
                                            stream, redundancy, acks_kind));
    }
    r.policy.redundancy = static_cast<core::Redundancy>(redundancy);
    r.policy.acks.kind = static_cast<core::Acks::Kind>(acks_kind);
    r.policy.retention.events_max = in.u64();
    r.policy.retention.bytes_max = in.u64();
    r.policy.retention.age_ms_max = in.u64();
    r.first_seq = core::Seq{in.u64()};
    r.last_seq = core::Seq{in.u64()};
    r.last_epoch = core::Epoch{in.u64()};
    r.last_timestamp_ns = core::TimestampNs{in.u64()};
    r.last_hash = in.digest();
    r.base_hash = in.digest();
    r.event_bytes = in.u64();
    r.created_ns = core::TimestampNs{in.u64()};
    r.confirmed_epoch = v2 ? core::Epoch{in.u64()} : core::Epoch{1};
    if (r.first_seq.value() == 0 || r.first_seq.value() > r.last_seq.value() + 1) {
        return core::make_error(core::errc::corrupt,
                                fmt::format("stream {}: stored record has first seq {} after last "
                                            "seq {}",
                                            stream, r.first_seq.value(), r.last_seq.value()));
    }
    return r;
}

}  // namespace spirit::storage::detail
