#include "storage/outbox_record.h"

#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"

namespace spirit::storage::detail {

namespace {

void put16(core::Bytes& b, std::size_t v) {
    b.push_back(static_cast<std::byte>((v >> 8) & 0xff));
    b.push_back(static_cast<std::byte>(v & 0xff));
}

void put32(core::Bytes& b, std::size_t v) {
    const std::size_t at = b.size();
    b.resize(at + 4);
    core::store_be32(b.data() + at, static_cast<std::uint32_t>(v));
}

class In {
 public:
    explicit In(core::ByteView b) : b_(b) {}
    bool take(std::size_t n, core::ByteView& out) {
        if (b_.size() - at_ < n) return false;
        out = b_.subspan(at_, n);
        at_ += n;
        return true;
    }
    bool u16(std::size_t& v) {
        core::ByteView x;
        if (!take(2, x)) return false;
        v = (static_cast<std::size_t>(x[0]) << 8) | static_cast<std::size_t>(x[1]);
        return true;
    }
    bool u32(std::size_t& v) {
        core::ByteView x;
        if (!take(4, x)) return false;
        v = core::load_be32(x.data());
        return true;
    }
    bool done() const { return at_ == b_.size(); }

 private:
    core::ByteView b_;
    std::size_t at_ = 0;
};

}  // namespace

core::Bytes encode_outbox_entry(std::string_view stream, std::span<const core::EventDraft> events) {
    core::Bytes b;
    put16(b, stream.size());
    core::append(b, core::as_bytes(stream));
    put32(b, events.size());
    for (const core::EventDraft& e : events) {
        SPIRIT_ASSERT(e.id.has_value());
        core::append(b, core::ByteView(e.id->bytes));
        put16(b, e.type.size());
        core::append(b, core::as_bytes(e.type));
        put32(b, e.metadata.size());
        core::append(b, e.metadata);
        put32(b, e.payload.size());
        core::append(b, e.payload);
    }
    return b;
}

core::Result<OutboxEntry> decode_outbox_entry(std::uint64_t id, core::ByteView bytes) {
    auto corrupt = [&] {
        return core::make_error(
            core::errc::corrupt,
            fmt::format("outbox entry {} ({} bytes) does not decode", id, bytes.size()));
    };
    In in(bytes);
    OutboxEntry entry;
    entry.id = id;
    std::size_t n = 0;
    core::ByteView x;
    if (!in.u16(n) || !in.take(n, x)) return corrupt();
    entry.stream = std::string(core::as_chars(x));
    std::size_t count = 0;
    if (!in.u32(count) || count > core::limits::batch_events_max) return corrupt();
    for (std::size_t i = 0; i < count; ++i) {
        OutboxEntry::Event& e = entry.events.emplace_back();
        if (!in.take(16, x)) return corrupt();
        std::memcpy(e.id.bytes.data(), x.data(), 16);
        if (!in.u16(n) || !in.take(n, x)) return corrupt();
        e.type = std::string(core::as_chars(x));
        if (!in.u32(n) || !in.take(n, x)) return corrupt();
        e.metadata.assign(x.begin(), x.end());
        if (!in.u32(n) || !in.take(n, x)) return corrupt();
        e.payload.assign(x.begin(), x.end());
    }
    if (!in.done()) return corrupt();
    return entry;
}

}  // namespace spirit::storage::detail
