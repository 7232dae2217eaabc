#include "daemon/cli/status_format.h"

#include <fmt/format.h>

#include "daemon/cli_format.h"

namespace spirit::daemon::cli {

namespace proto = core::protocol;

std::string human_bytes(std::uint64_t bytes) {
    constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) return fmt::format("{} B", bytes);
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < std::size(units)) {
        value /= 1024;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, units[unit]);
}

namespace {

std::string peer_line(const proto::PeerStatus& p) {
    std::string behind = fmt::format("{} events behind", p.lag_events);
    if (p.lag_ms > 0) {
        behind += fmt::format(" for {:.1f} s", static_cast<double>(p.lag_ms) / 1000.0);
    }
    return fmt::format("peer            {} {}, {} ({})\n", p.node_id,
                       p.connected ? "connected" : "not connected", behind, p.detail);
}

std::string store_line(const proto::StatusReply& s) {
    if (s.map_bytes == 0) return "";
    const double used =
        100.0 * static_cast<double>(s.used_bytes) / static_cast<double>(s.map_bytes);
    return fmt::format("store           {} used of a {} map ({:.1f}%); {} free on disk\n",
                       human_bytes(s.used_bytes), human_bytes(s.map_bytes), used,
                       human_bytes(s.disk_free_bytes));
}

std::string opt_json(const std::string& text) {
    return text.empty() ? "null" : json_string(text);
}

}  // namespace

std::string status_text(const proto::StatusReply& s) {
    std::string out;
    out += fmt::format("node            {}\n", s.node_id);
    out += fmt::format("server          {}\n", s.server);
    out += fmt::format("uptime          {:.1f} s\n", static_cast<double>(s.uptime_ms) / 1000.0);
    out += fmt::format("connections     {}\n", s.connections);
    out += fmt::format("subscriptions   {}\n", s.subscriptions);
    out += fmt::format("streams         {}\n", s.streams);
    out += fmt::format("commits         {}\n", s.commits);
    out += fmt::format("fsyncs          {}\n", s.syncs);
    out += fmt::format("events written  {}\n", s.events_written);
    out += fmt::format("failed commits  {}\n", s.failed_commits);
    out += fmt::format("storage         {}\n", s.storage_error.empty() ? "ok" : s.storage_error);
    out += store_line(s);
    out += fmt::format("role            {} (master {}, epoch {})\n", s.role,
                       s.master.empty() ? "not known" : s.master, s.epoch);
    out += fmt::format("state           {}\n", s.state);
    out += fmt::format("ready           {}\n", s.ready ? "yes" : "no: " + s.ready_detail);
    for (const proto::PeerStatus& p : s.peers) out += peer_line(p);
    for (const proto::ReplicationError& e : s.replication_errors) {
        out += fmt::format("replication     {}: {}\n", e.stream, e.message);
    }
    if (s.role == "slave") out += fmt::format("outbox          {} events\n", s.outbox_events);
    for (const proto::ConsumerStatus& c : s.consumers) {
        out += fmt::format("consumer        {} on {}: {} events behind (acked {} of {})\n",
                           c.consumer, c.stream, c.lag_events, c.acked.value(), c.last_seq.value());
    }
    return out;
}

std::string status_json(const proto::StatusReply& s) {
    std::string out = fmt::format(
        "{{\"node\":{},\"server\":{},\"uptime_ms\":{},\"connections\":{},\"subscriptions\":{},"
        "\"streams\":{},\"commits\":{},\"fsyncs\":{},\"events_written\":{},\"bytes_written\":{},"
        "\"failed_commits\":{},\"queued_bytes\":{},\"storage_error\":{},\"map_bytes\":{},"
        "\"used_bytes\":{},\"disk_free_bytes\":{},\"role\":{},\"master\":{},\"epoch\":{},"
        "\"state\":{},\"ready\":{},\"ready_detail\":{},\"outbox_events\":{},\"peers\":[",
        json_string(s.node_id), json_string(s.server), s.uptime_ms, s.connections, s.subscriptions,
        s.streams, s.commits, s.syncs, s.events_written, s.bytes_written, s.failed_commits,
        s.queued_bytes, opt_json(s.storage_error), s.map_bytes, s.used_bytes, s.disk_free_bytes,
        json_string(s.role), opt_json(s.master), s.epoch, json_string(s.state),
        s.ready ? "true" : "false", opt_json(s.ready_detail), s.outbox_events);
    for (std::size_t i = 0; i < s.peers.size(); ++i) {
        const proto::PeerStatus& p = s.peers[i];
        out += fmt::format(
            "{}{{\"node\":{},\"connected\":{},\"lag_events\":{},\"lag_ms\":{},\"detail\":{}}}",
            i == 0 ? "" : ",", json_string(p.node_id), p.connected ? "true" : "false", p.lag_events,
            p.lag_ms, json_string(p.detail));
    }
    out += "],\"replication_errors\":[";
    for (std::size_t i = 0; i < s.replication_errors.size(); ++i) {
        const proto::ReplicationError& e = s.replication_errors[i];
        out += fmt::format("{}{{\"stream\":{},\"message\":{}}}", i == 0 ? "" : ",",
                           json_string(e.stream), json_string(e.message));
    }
    out += "],\"consumers\":[";
    for (std::size_t i = 0; i < s.consumers.size(); ++i) {
        const proto::ConsumerStatus& c = s.consumers[i];
        out += fmt::format(
            "{}{{\"consumer\":{},\"stream\":{},\"acked\":{},\"last_seq\":{},\"lag_events\":{}}}",
            i == 0 ? "" : ",", json_string(c.consumer), json_string(c.stream), c.acked.value(),
            c.last_seq.value(), c.lag_events);
    }
    out += "]}";
    return out;
}

}  // namespace spirit::daemon::cli
