#include "daemon/cluster/slave.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/stream_name.h"
#include "daemon/cluster/peer_links.h"
#include "daemon/log.h"
#include "daemon/visibility.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// Streams per Positions frame: far below the frame limit at the longest names.
constexpr std::size_t positions_per_frame = 2000;
// One FetchReply: at most this many events and bytes.
constexpr std::size_t fetch_events_max = 1024;
constexpr std::size_t fetch_bytes_max = 1u << 20;

// "seq 7" or "seqs 7 to 103 (15 seqs)", for logs.
std::string seqs_text(const std::vector<core::Seq>& seqs) {
    if (seqs.size() == 1) return fmt::format("seq {}", seqs[0].value());
    if (seqs.empty()) return "no seqs";
    const auto [low, high] = std::minmax_element(seqs.begin(), seqs.end());
    return fmt::format("seqs {} to {} ({} seqs)", low->value(), high->value(), seqs.size());
}

std::string policy_text(const core::StreamPolicy& p) {
    std::string acks = "majority";
    if (p.acks.kind == core::Acks::Kind::all) acks = "all";
    if (p.acks.kind == core::Acks::Kind::count) acks = std::to_string(p.acks.count);
    const core::Retention& r = p.retention;
    const std::string retention = r == core::Retention{}
                                      ? "none"
                                      : fmt::format("events_max {}, bytes_max {}, age_ms_max {}",
                                                    r.events_max, r.bytes_max, r.age_ms_max);
    return fmt::format("redundancy {}, acks {}, retention {}",
                       p.redundancy == core::Redundancy::immediate ? "immediate" : "eventual", acks,
                       retention);
}

std::uint32_t wire_code(const core::Error& e) {
    return e.code.category() == core::spirit_category()
               ? static_cast<std::uint32_t>(e.code.value())
               : static_cast<std::uint32_t>(errc::internal);
}

}  // namespace

Slave::Slave(Context context, core::Epoch epoch, core::NodeId master)
    : c_(std::move(context)), epoch_(epoch), master_(std::move(master)) {}

Slave::~Slave() {
    *alive_ = false;
}

bool Slave::send(const proto::Message& message) {
    return c_.links.send(master_, message);
}

void Slave::master_linked() {
    refused_.clear();
    send_positions();
}

void Slave::master_unlinked() {
    refused_.clear();
    next_.clear();
}

void Slave::send_positions() {
    auto streams = c_.store.list_streams();
    if (!streams) {
        // A link that cannot report would never replicate: start it over.
        spdlog::error("replication from {}: {}", master_.value(), streams.error().message());
        return c_.links.close(master_, streams.error());
    }
    // `$topology` is each node's own: never reported or replicated.
    std::erase_if(*streams, [](const auto& s) { return core::is_system_stream(s.name); });
    next_.clear();
    proto::Positions frame{epoch_, c_.freshness() == topology::CopyFreshness::fresh, {}, false};
    for (std::size_t i = 0; i < streams->size(); ++i) {
        const storage::StreamInfo& info = (*streams)[i];
        frame.streams.push_back(proto::CopyPosition{info.name, info.confirmed_epoch, info.last_seq,
                                                    info.last_hash, info.policy});
        next_.insert_or_assign(info.name, Next{info.last_seq, info.last_hash});
        policies_.insert_or_assign(info.name, Policies{info.policy, std::nullopt});
        if (frame.streams.size() == positions_per_frame && i + 1 < streams->size()) {
            frame.more = true;
            send(frame);
            frame.streams.clear();
        }
    }
    frame.more = false;
    send(frame);
}

void Slave::on_replicate(const proto::Replicate& r) {
    const std::string stream(r.stream);
    if (core::is_system_stream(stream)) {
        return refuse(stream, r.prev_seq.next(),
                      core::Error{core::make_error_code(errc::invalid_argument),
                                  "a system stream is each node's own and never replicated"});
    }
    auto next = next_.find(stream);
    const bool continues =
        next == next_.end() || (next->second.seq == r.prev_seq && next->second.hash == r.prev_hash);
    if (auto refusal = refused_.find(stream); refusal != refused_.end()) {
        if (!continues) return;  // frames sent before the master heard of the refusal
        refused_.erase(refusal);
    }
    if (!continues) {
        return refuse(
            stream, r.prev_seq.next(),
            core::Error{core::make_error_code(errc::invalid_argument),
                        fmt::format("stream {}: the master sent events after seq {}, "
                                    "this copy continues after seq {}",
                                    stream, r.prev_seq.value(), next->second.seq.value())});
    }
    check_policy(stream, r.policy);
    heard(stream, r.history, r.visible);
    if (r.envelopes.empty()) return confirm(stream, r.policy, r.prev_seq, r.prev_hash);
    auto last = core::decode_envelope(r.envelopes.back());
    if (!last) return refuse(stream, r.prev_seq.next(), last.error());
    const Next end{last->seq, last->hash};
    std::weak_ptr<bool> alive = alive_;
    auto queued = c_.store.append_replicated(
        {.stream = stream,
         .policy = r.policy,
         .epoch = epoch_,
         .prev_seq = r.prev_seq,
         .prev_hash = r.prev_hash,
         .envelopes = r.envelopes,
         .history = r.history},
        [this, alive, stream](core::Result<storage::AppendResult> result) {
            if (alive.expired() || !*alive.lock()) return;
            applied(stream, std::move(result));
        });
    if (!queued && queued.error().is(errc::busy)) {
        // Commits of this copy were in flight when it reported its position
        // (from when this node was master): report again once they land.
        spdlog::info("replication of stream {}: {}; reporting positions again", stream,
                     queued.error().message());
        positions_due_ = true;
        return;
    }
    if (!queued) {
        if (queued.error().is(errc::shutting_down) || queued.error().is(errc::overloaded) ||
            queued.error().is(errc::storage_failed)) {
            // Not the chain's fault: the next link sends it again from Positions.
            spdlog::warn("replication of stream {}: {}", stream, queued.error().message());
            return c_.links.close(master_, queued.error());
        }
        return refuse(stream, r.prev_seq.next(), queued.error());
    }
    next_.insert_or_assign(stream, end);
}

void Slave::check_policy(const std::string& stream, const core::StreamPolicy& sent) {
    auto it = policies_.find(stream);
    if (it == policies_.end()) {
        // A stream this copy did not report: the record, if there is one
        // now, else the one the Replicate creates it with.
        auto info = c_.store.stream_info(stream);
        const core::StreamPolicy recorded = info && *info ? (*info)->policy : sent;
        it = policies_.emplace(stream, Policies{recorded, std::nullopt}).first;
    }
    Policies& p = it->second;
    if (p.recorded == sent || p.warned == sent) return;
    p.warned = sent;
    // The record changes only through `$topology` (stream_policy_changed);
    // a master's frames built before such a change may name the old one.
    spdlog::warn(
        "stream {}: the master {} replicates it with policy ({}), but this copy's record says "
        "({}); the record is kept and decides what this node does with the stream",
        stream, master_.value(), policy_text(sent), policy_text(p.recorded));
}

void Slave::applied(const std::string& stream, core::Result<storage::AppendResult> result) {
    if (!result) {
        // A commit that failed (disk full, say) is not a bad chain: heads were
        // reset, so start the link over; the master resends from Positions.
        spdlog::warn("replication of stream {}: {}", stream, result.error().message());
        return c_.links.close(master_, result.error());
    }
    durable(stream, result->last_seq);
    ack(stream, result->last_seq, result->last_hash);
}

void Slave::refuse(const std::string& stream, core::Seq seq, const core::Error& why) {
    auto next = next_.find(stream);
    Refusal refusal;
    if (next != next_.end()) {
        refusal.resume_seq = next->second.seq;
        refusal.resume_hash = next->second.hash;
    } else if (auto info = c_.store.stream_info(stream); info && *info) {
        refusal.resume_seq = (*info)->last_seq;
        refusal.resume_hash = (*info)->last_hash;
    }
    refusal.why = why.message();
    spdlog::error("replication of stream {} from {} refused at seq {}: {}", stream, master_.value(),
                  seq.value(), refusal.why);
    send(proto::ReplicaRefused{epoch_, stream, seq, wire_code(why), why.detail, refusal.resume_seq,
                               refusal.resume_hash});
    refused_.insert_or_assign(stream, std::move(refusal));
}

void Slave::confirm(const std::string& stream, const core::StreamPolicy& policy, core::Seq seq,
                    const core::Digest& hash) {
    // Short of the master's history, the position is checked but the epoch
    // waits: a copy confirmed in this epoch holds all of it.
    auto said = said_.find(stream);
    const core::Seq history = said == said_.end() ? core::Seq{0} : said->second.history;
    std::weak_ptr<bool> alive = alive_;
    auto queued =
        c_.store.confirm_epoch({.stream = stream,
                                .policy = policy,
                                .epoch = epoch_,
                                .seq = seq,
                                .hash = hash,
                                .history = history},
                               [this, alive, stream, seq, hash](core::Result<void> r) {
                                   if (alive.expired() || !*alive.lock()) return;
                                   if (!r) {
                                       spdlog::warn("confirming epoch {} on {}: {}", epoch_.value(),
                                                    stream, r.error().message());
                                       return c_.links.close(master_, r.error());
                                   }
                                   // The master checked this copy up to here: it may be shown.
                                   durable(stream, seq);
                                   ack(stream, seq, hash);
                               });
    if (!queued) return refuse(stream, seq.next(), queued.error());
    next_.insert_or_assign(stream, Next{seq, hash});
}

void Slave::ack(const std::string& stream, core::Seq seq, const core::Digest& hash) {
    send(proto::ReplicaAck{epoch_, stream, seq, hash, confirmed_at(stream, seq)});
}

core::Epoch Slave::confirmed_at(const std::string& stream, core::Seq seq) const {
    auto said = said_.find(stream);
    if (said == said_.end() || seq >= said->second.history) return epoch_;
    auto info = c_.store.stream_info(stream);
    return info && *info ? (*info)->confirmed_epoch : core::Epoch{0};
}

bool Slave::immediate(const std::string& stream) const {
    if (auto p = policies_.find(stream); p != policies_.end()) {
        return p->second.recorded.redundancy == core::Redundancy::immediate;
    }
    auto info = c_.store.stream_info(stream);
    return info && *info && (*info)->policy.redundancy == core::Redundancy::immediate;
}

void Slave::heard(const std::string& stream, core::Seq history, std::optional<core::Seq> visible) {
    Said& said = said_[stream];
    said.history = std::max(said.history, history);
    if (visible && *visible > said.visible) {
        said.visible = *visible;
        show(stream);
    }
}

void Slave::durable(const std::string& stream, core::Seq seq) {
    Said& said = said_[stream];
    said.durable = std::max(said.durable, seq);
    show(stream);
}

void Slave::show(const std::string& stream) {
    const Said& said = said_[stream];
    // An eventual event the master committed may be shown where it is
    // durable; an immediate one only once the master counted its copies,
    // so that no consumer here sees an event a failover could quarantine.
    c_.visibility.advance(stream,
                          immediate(stream) ? std::min(said.durable, said.visible) : said.durable);
}

void Slave::on_visible(const proto::Visible& v) {
    heard(std::string(v.stream), core::Seq{0}, v.seq);
}

void Slave::on_probe(const proto::Probe& probe) {
    auto hashes = c_.store.hashes_at(probe.stream, probe.seqs);
    if (hashes && hashes->size() != probe.seqs.size()) {
        hashes = core::Unexpected{
            core::Error{core::make_error_code(errc::internal), "fewer hashes than seqs were read"}};
    }
    if (!hashes) {
        // Never "no such seq" for a seq this copy may hold: the search would
        // end too low and the master would cut events both copies share.
        return read_failed(probe.stream,
                           fmt::format("the master's probe of {}", seqs_text(probe.seqs)),
                           hashes.error());
    }
    proto::ProbeReply reply{epoch_, probe.stream, {}};
    for (std::size_t i = 0; i < probe.seqs.size(); ++i) {
        reply.hashes.push_back(proto::SeqHash{probe.seqs[i], (*hashes)[i]});
    }
    send(reply);
}

void Slave::read_failed(const std::string& stream, std::string_view what, const core::Error& why) {
    spdlog::error(
        "stream {}: reading this copy for {} failed: {}; closing the link to the master {} so "
        "that both sides start over",
        stream, what, why.message(), master_.value());
    c_.links.close(master_, why);
}

void Slave::on_truncate(const proto::Truncate& truncate) {
    auto here = c_.store.hashes_at(truncate.stream, std::vector<core::Seq>{truncate.after_seq});
    if (!here) {
        return read_failed(truncate.stream,
                           fmt::format("the master's cut after seq {}", truncate.after_seq.value()),
                           here.error());
    }
    if (here->empty() || !(*here)[0] || *(*here)[0] != truncate.hash) {
        // The copy changed since the search: report it again.
        spdlog::warn(
            "stream {}: asked to cut after seq {}, but this copy does not hold that "
            "hash there any more; reporting positions again",
            truncate.stream, truncate.after_seq.value());
        return send_positions();
    }
    refused_.erase(truncate.stream);
    heard(truncate.stream, truncate.history, std::nullopt);
    cut(truncate);
}

void Slave::cut(const proto::Truncate& t) {
    std::weak_ptr<bool> alive = alive_;
    auto before = c_.store.stream_info(t.stream);
    const std::uint64_t removed = before && *before && (*before)->last_seq > t.after_seq
                                      ? (*before)->last_seq.value() - t.after_seq.value()
                                      : 0;
    auto queued = c_.store.truncate_after(t.stream, t.after_seq, [this, alive, t, removed](auto r) {
        if (alive.expired() || !*alive.lock()) return;
        if (!r) {
            spdlog::error("cutting stream {} after seq {}: {}", t.stream, t.after_seq.value(),
                          r.error().message());
            return c_.links.close(master_, r.error());
        }
        spdlog::warn(
            "stream {}: the events after seq {} differed from the master's copy and "
            "were moved to quarantine (spirit quarantine ls)",
            t.stream, t.after_seq.value());
        c_.visibility.cut(t.stream, t.after_seq);
        if (removed > 0) {
            c_.record(core::topo::SuffixQuarantined{t.stream, epoch_, t.after_seq, removed});
        }
        if (t.remove) return remove(t.stream);
        auto info = c_.store.stream_info(t.stream);
        const core::StreamPolicy policy = info && *info ? (*info)->policy : core::StreamPolicy{};
        confirm(t.stream, policy, t.after_seq, t.hash);
    });
    if (!queued) {
        if (queued.error().is(errc::busy)) {
            cuts_waiting_.push_back(t);  // commits in flight first: tick() retries
            return;
        }
        spdlog::error("cutting stream {} after seq {}: {}", t.stream, t.after_seq.value(),
                      queued.error().message());
        return c_.links.close(master_, queued.error());
    }
    next_.insert_or_assign(t.stream, Next{t.after_seq, t.hash});
}

void Slave::remove(const std::string& stream) {
    // The master holds no such stream: the empty copy goes too (its events
    // are in quarantine), so a stream of that name the master creates later
    // comes with the master's policy.
    std::weak_ptr<bool> alive = alive_;
    auto queued = c_.store.delete_stream(stream, [this, alive, stream](core::Result<void> r) {
        if (alive.expired() || !*alive.lock()) return;
        if (!r) spdlog::warn("removing the empty copy of {}: {}", stream, r.error().message());
        c_.visibility.forget(stream);
        ack(stream, core::Seq{0}, core::genesis_hash);
    });
    if (!queued)
        spdlog::warn("removing the empty copy of {}: {}", stream, queued.error().message());
    next_.erase(stream);
    policies_.erase(stream);
}

void Slave::policy_changed(const std::string& stream, const core::StreamPolicy& policy) {
    policies_.insert_or_assign(stream, Policies{policy, std::nullopt});
}

void Slave::forget(const std::string& stream) {
    next_.erase(stream);
    refused_.erase(stream);
    policies_.erase(stream);
    said_.erase(stream);
}

void Slave::tick() {
    if (positions_due_) {
        positions_due_ = false;
        send_positions();
    }
    std::vector<proto::Truncate> waiting;
    waiting.swap(cuts_waiting_);
    for (const proto::Truncate& t : waiting) cut(t);
}

void Slave::on_fetch(const proto::Fetch& fetch) {
    core::Bytes out;
    auto fail = [&](const core::Error& e) {
        out.clear();
        proto::encode(
            out,
            proto::FetchReply{
                epoch_, fetch.stream, wire_code(e), e.message(), core::Seq{0}, core::Digest{}, {}});
        c_.links.send_frame(master_, out);
    };
    auto prev = c_.store.hashes_at(fetch.stream, std::vector<core::Seq>{fetch.from_seq.prev()});
    if (!prev) return fail(prev.error());
    if (prev->empty() || !(*prev)[0]) {
        return fail(core::Error{core::make_error_code(errc::not_found),
                                fmt::format("stream {}: this copy holds no seq {}", fetch.stream,
                                            fetch.from_seq.prev().value())});
    }
    if (fetch.to_seq < fetch.from_seq)
        return fail(core::Error{core::make_error_code(errc::invalid_argument),
                                "an empty range was asked for"});
    const auto events_max = static_cast<std::size_t>(std::min<std::uint64_t>(
        fetch_events_max, fetch.to_seq.value() - fetch.from_seq.value() + 1));
    proto::FetchReplyFrameBuilder frame(out, epoch_, fetch.stream, fetch.from_seq.prev(),
                                        *(*prev)[0]);
    // Not verified here: the master checks every link before it stores.
    auto read = c_.store.read(fetch.stream,
                              {.from_seq = fetch.from_seq,
                               .events_max = events_max,
                               .bytes_max = fetch_bytes_max,
                               .verification = storage::Verification::none},
                              [&](const core::EnvelopeView&, core::ByteView encoded) {
                                  frame.add(encoded);
                                  return storage::Visit::next;
                              });
    if (!read) return fail(read.error());
    frame.finish();
    c_.links.send_frame(master_, out);
}

std::vector<proto::ReplicationError> Slave::errors() const {
    std::vector<proto::ReplicationError> out;
    for (const auto& [stream, refusal] : refused_) {
        out.push_back(
            {stream, fmt::format("refused what {} sent: {}", master_.value(), refusal.why)});
    }
    return out;
}

}  // namespace spirit::daemon
