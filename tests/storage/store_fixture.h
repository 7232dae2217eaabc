// tests/storage/store_fixture.h: a Store in a temp dir with a settable
// clock, and helpers to append and read back.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/store.h"
#include "tests/support/bytes.h"
#include "tests/support/temp_dir.h"

namespace spirit::test {

struct ManualClock {
    std::atomic<std::uint64_t> now_ns{1'700'000'000'000'000'000ULL};
    void advance_ms(std::uint64_t ms) { now_ns += ms * 1'000'000; }
};

// Owns the strings behind the EventDraft views.
struct Batch {
    std::vector<std::string> payloads;
    std::vector<std::optional<core::EventId>> ids;
    std::vector<core::EventDraft> drafts;

    Batch& add(std::string payload, std::optional<core::EventId> id = std::nullopt) {
        payloads.push_back(std::move(payload));
        ids.push_back(id);
        return *this;
    }
    std::span<const core::EventDraft> events() {
        drafts.clear();
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            drafts.push_back(core::EventDraft{ids[i], "test", {}, core::as_bytes(payloads[i])});
        }
        return drafts;
    }
};

class StoreFixture {
 public:
    explicit StoreFixture(storage::StoreOptions options = {}) : options_(std::move(options)) {
        options_.data_dir = dir_.path() / "data";
        options_.clock = [this] { return core::TimestampNs{clock.now_ns.load()}; };
        reopen();
    }

    storage::Store& store() { return *store_; }
    void close() { store_.reset(); }
    void reopen() {
        store_.reset();
        auto s = storage::Store::open(options_);
        if (!s) FAIL("open: " << s.error().message());
        store_ = std::move(*s);
    }
    const std::filesystem::path& data_dir() const { return options_.data_dir; }
    storage::StoreOptions& options() { return options_; }

    core::Result<storage::AppendResult> append(const std::string& stream, Batch batch,
                                               std::optional<core::Seq> expected = std::nullopt) {
        storage::AppendRequest request{
            .stream = stream, .events = batch.events(), .expected_last_seq = expected};
        return store_->append_sync(request);
    }

    // Appends `count` events "stream-i" one per append; returns the last result.
    storage::AppendResult append_n(const std::string& stream, int count, int batch_size = 1) {
        storage::AppendResult last;
        for (int i = 0; i < count; i += batch_size) {
            Batch b;
            for (int j = i; j < std::min(count, i + batch_size); ++j) {
                b.add(stream + "-" + std::to_string(j));
            }
            auto r = append(stream, std::move(b));
            REQUIRE(r);
            last = *r;
        }
        return last;
    }

    // Payloads of the committed events from `from`, verified by the store.
    std::vector<std::string> payloads(const std::string& stream, core::Seq from = core::Seq{1}) {
        std::vector<std::string> out;
        core::Seq next = from;
        for (;;) {
            auto r = store_->read(stream, {.from_seq = next, .events_max = 1000},
                                  [&](const core::EnvelopeView& e, core::ByteView) {
                                      out.emplace_back(core::as_chars(e.payload));
                                      return storage::Visit::next;
                                  });
            REQUIRE(r);
            if (r->events == 0) break;
            next = r->next_seq;
        }
        return out;
    }

    // Starts an op that reports through a DoneCallback (`start` returns its
    // immediate Result) and waits for the callback, draining completions.
    template <class Start>
    core::Result<void> wait_done(Start start) {
        std::atomic<bool> finished{false};
        core::Result<void> out;
        auto queued = start([&](core::Result<void> r) {
            out = std::move(r);
            finished = true;
        });
        if (!queued) return queued;
        while (!finished) {
            if (store_->drain_completed() == 0) std::this_thread::yield();
        }
        return out;
    }

    core::Result<void> confirm(const storage::ConfirmEpoch& request) {
        return wait_done([&](storage::DoneCallback done) {
            return store_->confirm_epoch(request, std::move(done));
        });
    }

    core::Result<void> put_node_value(std::string_view key, std::string_view value) {
        return wait_done([&](storage::DoneCallback done) {
            return store_->put_node_value(key, core::as_bytes(value), std::move(done));
        });
    }

    storage::StreamInfo info(const std::string& stream) {
        auto info = store_->stream_info(stream);
        REQUIRE(info);
        REQUIRE(*info);
        return **info;
    }

    // Encoded envelopes [from, to] of `stream` as stored, in seq order.
    std::vector<core::Bytes> envelopes(const std::string& stream, core::Seq from, core::Seq to) {
        std::vector<core::Bytes> out;
        auto r =
            store_->read(stream, {.from_seq = from, .events_max = to.value() + 1 - from.value()},
                         [&](const core::EnvelopeView&, core::ByteView encoded) {
                             out.emplace_back(encoded.begin(), encoded.end());
                             return storage::Visit::next;
                         });
        REQUIRE(r);
        return out;
    }

    // Every quarantined event of `stream`, read a page at a time.
    std::vector<storage::QuarantinedEvent> quarantined(const std::string& stream,
                                                       std::size_t page_events = 1000) {
        std::vector<storage::QuarantinedEvent> out;
        storage::QuarantineReadOptions options{.events_max = page_events};
        for (;;) {
            auto page = store_->quarantine_read(stream, options);
            REQUIRE(page);
            for (auto& e : page->events) out.push_back(std::move(e));
            if (!page->next) break;
            options.after = page->next;
        }
        return out;
    }

    ManualClock clock;

 private:
    TempDir dir_;
    storage::StoreOptions options_;
    std::unique_ptr<storage::Store> store_;
};

}  // namespace spirit::test
