// The node as a slave of (epoch, master), mirroring daemon/cluster/slave.h:
// it reports its durable positions (after a barrier, so nothing of an
// earlier part is still in flight to disk), appends only what continues
// its copy and chains, acks its durable position with its confirmed epoch,
// answers probes and fetches from its durable copy, cuts its divergent
// suffix into quarantine when told, and shows consumers only what its
// master declared visible, once its copy is aligned with that master.
#include <fmt/format.h>

#include <algorithm>

#include "tests/sim/node.h"
#include "tests/sim/world.h"

namespace spirit::sim {

namespace {

constexpr std::uint64_t fetch_entries_max = 16;

}  // namespace

void Node::slave_report() {
    barrier(guarded([this] {
        PositionsMsg m{slave_->epoch, {}, {}};
        for (std::size_t s = 0; s < stream_count; ++s) {
            const Copy& d = durable(s);
            m.at[s] = d.position();
            m.last_epoch[s] = d.entries.empty() ? Epoch{0} : d.entries.back().epoch;
        }
        send(slave_->master, m);
    }));
}

// The epoch a copy of `length` events of the master's chain may record as
// confirmed: the master's, once it holds the master's history (what it had
// when it completed the stream), else none new (Epoch{0}). Ranking copies
// by (confirmed epoch, seq) needs that: a copy confirmed in an epoch holds
// everything that epoch's master started from.
Epoch Node::slave_confirms(std::size_t stream, Seq length) const {
    if (world_.options().mutations.slave_confirms_early) return slave_->epoch;
    return length >= slave_->history[stream] ? slave_->epoch : Epoch{0};
}

void Node::slave_replicate(const ReplicateMsg& m) {
    const std::size_t s = m.stream;
    const Copy& h = head_[s];
    slave_->history[s] = std::max(slave_->history[s], m.history);
    if (m.prev_seq == h.last_seq() && m.prev_hash == h.last_hash()) {
        if (!chains(m.prev_hash, m.entries)) return slave_refuse(s);
        slave_visible(s, m.visible);
        if (m.entries.empty()) return slave_align(m);
        const Seq end{h.last_seq().value() + m.entries.size()};
        append(s, m.entries, slave_confirms(s, end), guarded([this, s] {
                   slave_ack(s);
                   slave_expose(s);
               }));
        return;
    }
    // A duplicate, or a frame sent before an earlier one was resent: this
    // copy already holds all of it. Anything else does not continue it.
    const Seq end{m.prev_seq.value() + m.entries.size()};
    const std::uint64_t end_hash = m.entries.empty() ? m.prev_hash : m.entries.back().hash;
    if (end <= h.last_seq() && h.hash_at(end) == end_hash) {
        slave_visible(s, m.visible);
        return;
    }
    slave_refuse(s);
}

void Node::slave_align(const ReplicateMsg& m) {
    const std::size_t s = m.stream;
    auto done = guarded([this, s] {
        slave_ack(s);
        slave_expose(s);
    });
    if (slave_confirms(s, head_[s].last_seq()) == Epoch{0}) return barrier(std::move(done));
    confirm(s, slave_->epoch, std::move(done));
}

void Node::slave_refuse(std::size_t stream) {
    const Copy& h = head_[stream];
    send(slave_->master, RefusedMsg{slave_->epoch, stream, h.last_seq(), h.last_hash()});
}

void Node::slave_ack(std::size_t stream) {
    send(slave_->master, AckMsg{slave_->epoch, stream, durable(stream).position()});
}

void Node::slave_visible(std::size_t stream, Seq visible) {
    slave_->declared[stream] = std::max(slave_->declared[stream], visible);
    slave_expose(stream);
}

void Node::slave_expose(std::size_t stream) {
    const Copy& d = durable(stream);
    if (world_.options().mutations.slave_exposes_unconfirmed) return expose(stream, d.last_seq());
    // Only a copy aligned with this master is a prefix of its chain.
    if (d.confirmed != slave_->epoch) return;
    expose(stream, std::min(d.last_seq(), slave_->declared[stream]));
}

void Node::slave_probe(const ProbeMsg& m) {
    ProbeReplyMsg r{m.epoch, m.stream, {}, durable(m.stream).position()};
    for (Seq seq : m.seqs) r.hashes.emplace_back(seq, durable(m.stream).hash_at(seq));
    send(slave_->master, std::move(r));
}

void Node::slave_truncate(const TruncateMsg& m) {
    const std::size_t s = m.stream;
    const Copy& h = head_[s];
    const topology::Position at = durable(s).position();
    if (at.seq != m.searched.seq || at.hash != m.searched.hash) return;  // a late one
    if (h.hash_at(m.after) != m.hash) {
        trace(fmt::format("{}: told to cut after seq {}, which it does not hold so; reports again",
                          stream_name(s), m.after.value()));
        return slave_report();
    }
    const std::uint64_t count = h.last_seq().value() - m.after.value();
    if (count > 0) {
        trace(fmt::format("{}: cuts {} events after seq {} into quarantine (master {})",
                          stream_name(s), count, m.after.value(),
                          world_.node(slave_->master).id().value()));
    }
    slave_->history[s] = std::max(slave_->history[s], m.history);
    const Epoch epoch = slave_->epoch;
    const Seq after = m.after;
    truncate(s, after, guarded([this, s, after, count, epoch] {
                 if (count > 0) {
                     note(core::topo::SuffixQuarantined{stream_name(s), epoch, after, count});
                 }
                 auto done = guarded([this, s] {
                     slave_ack(s);
                     slave_expose(s);
                 });
                 // Cut short of the master's history, it confirms once it caught up.
                 if (slave_confirms(s, after) == Epoch{0}) return done();
                 confirm(s, epoch, std::move(done));
             }));
}

void Node::slave_fetch(const FetchMsg& m) {
    const Copy& d = durable(m.stream);
    FetchReplyMsg r{m.epoch, m.stream, false, m.from.prev(), 0, {}};
    const auto prev = d.hash_at(m.from.prev());
    if (prev && m.to >= m.from) {
        r.ok = true;
        r.prev_hash = *prev;
        const std::uint64_t last =
            std::min({m.to.value(), d.last_seq().value(), m.from.value() + fetch_entries_max - 1});
        for (std::uint64_t seq = m.from.value(); seq <= last; ++seq) {
            r.entries.push_back(d.at(Seq{seq}));
        }
    }
    send(slave_->master, std::move(r));
}

}  // namespace spirit::sim
