#include "tests/cluster/cluster_harness.h"

#include <catch2/catch.hpp>
#include <deque>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/identity.h"
#include "tests/support/bytes.h"

namespace spirit::test {

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)), key_dir_("spirit-keys") {
    const int members = options_.nodes + options_.witnesses;
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < members; ++i) {
        ids_.push_back(i < options_.nodes ? fmt::format("node-{}", static_cast<char>('a' + i))
                                          : fmt::format("witness-{}", i - options_.nodes + 1));
        ports.push_back(free_tcp_port());
        const core::Identity id = core::Identity::generate();
        REQUIRE(id.save(key_file(static_cast<std::size_t>(i))));
        keys_.push_back(core::public_key_text(id.public_key()));
    }
    // With a proxied node p, every link of p runs through a proxy: p dials
    // proxies to the others, and the others dial a proxy to p.
    std::vector<std::uint16_t> via_proxy = ports;
    if (options_.proxied >= 0) {
        for (int j = 0; j < members; ++j) {
            const auto k = static_cast<std::size_t>(j);
            proxies_.push_back(std::make_unique<TcpProxy>(ports[k]));
            via_proxy[k] = proxies_.back()->port();
        }
    }
    auto members_toml = [&](int self) {
        std::string out;
        for (int j = 0; j < members; ++j) {
            const auto k = static_cast<std::size_t>(j);
            const bool through = options_.proxied >= 0 && j != self &&
                                 (self == options_.proxied || j == options_.proxied);
            out += fmt::format(
                "[[cluster.members]]\nid = \"{}\"\naddress = \"127.0.0.1:{}\"\npublic_key = "
                "\"{}\"\nrole = \"{}\"\n",
                ids_[k], through ? via_proxy[k] : ports[k], keys_[k],
                j < options_.nodes ? "data" : "witness");
        }
        return out;
    };
    for (int i = 0; i < members; ++i) {
        const auto k = static_cast<std::size_t>(i);
        std::string toml = fmt::format(
            "[cluster]\nname = \"test\"\nlisten = \"127.0.0.1:{}\"\n"
            "heartbeat_ms = 100\npeer_timeout_ms = {}\nreconnect_ms_min = 20\n"
            "reconnect_ms_max = 300\nack_timeout_ms = 2000\n{}\n",
            ports[k], options_.peer_timeout_ms, options_.extra_cluster_toml);
        toml += members_toml(i);
        toml += options_.extra_toml;
        metrics_ports_.push_back(options_.metrics ? free_tcp_port() : 0);
        if (options_.metrics) {
            toml += fmt::format("\n[metrics]\nlisten = \"127.0.0.1:{}\"\n", metrics_ports_.back());
        }
        DaemonOptions daemon{.node_id = ids_[k],
                             .extra_toml = toml,
                             .node_toml = fmt::format("key_file = \"{}\"\n", key_file(k).string())};
        nodes_.push_back(std::make_unique<Daemon>(daemon));
    }
    ports_ = ports;
}

std::filesystem::path Cluster::key_file(std::size_t index) const {
    return key_dir_.path() / fmt::format("node-{}.key", index);
}

Daemon& Cluster::node(const std::string& id) {
    for (std::size_t i = 0; i < ids_.size(); ++i) {
        if (ids_[i] == id) return *nodes_[i];
    }
    FAIL("no node " << id);
    return *nodes_[0];
}

void Cluster::cut() {
    REQUIRE_FALSE(proxies_.empty());
    for (auto& p : proxies_) p->cut();
}

void Cluster::heal() {
    REQUIRE_FALSE(proxies_.empty());
    for (auto& p : proxies_) p->heal();
}

void Cluster::start_all() {
    for (auto& n : nodes_) n->start();
    if (!options_.master.empty()) make_master(options_.master);
}

std::optional<std::string> Cluster::serving_master() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->running()) continue;
        // A paused node does not answer: it is not serving.
        net::ClientOptions options;
        options.endpoint = nodes_[i]->endpoint();
        options.connect_timeout_ms = 500;
        options.request_timeout_ms = 500;
        options.reconnect = false;
        auto client = net::Client::connect(options);
        if (!client) continue;
        auto s = (*client)->status();
        if (s && s->role == "master" && s->state.rfind("serving", 0) == 0) return ids_[i];
    }
    return std::nullopt;
}

std::uint64_t Cluster::make_master(const std::string& id, bool force,
                                   std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::optional<std::string> serving;
    auto left = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
    };
    while (std::chrono::steady_clock::now() < deadline) {
        serving = serving_master();
        if (serving == id) return status_of(node(id)).epoch;
        // A transfer asked of the target itself: it stands at once. Refused
        // (unless forced) while its data dir is new and not caught up.
        auto admin = node(id).client();
        if (admin->set_master(id, force)) {
            if (wait_until([&] { return serving_master() == id; },
                           std::min(left(), std::chrono::milliseconds(10'000)))) {
                return status_of(node(id)).epoch;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string logs;
    for (auto& n : nodes_) logs += n->log();
    FAIL("node " << id << " did not become the serving master (serving: "
                 << serving.value_or("none") << ")\n"
                 << logs);
    return 0;
}

void Cluster::wait_connected(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& n : nodes_) {
        while (true) {
            auto client = n->client();
            auto s = client->status();
            REQUIRE(s);
            bool all = !s->peers.empty();
            for (const auto& p : s->peers) all = all && p.connected;
            if (all) break;
            if (std::chrono::steady_clock::now() > deadline) {
                FAIL("peers of " << s->node_id << " not all connected:\n" << n->log());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

core::protocol::StatusReply status_of(const Daemon& daemon) {
    auto client = daemon.client();
    auto s = client->status();
    REQUIRE(s);
    return *s;
}

void wait_serving(const Daemon& daemon, std::chrono::milliseconds timeout) {
    core::protocol::StatusReply last;
    const bool ok = wait_until(
        [&] {
            last = status_of(daemon);
            return last.role == "master" && last.state.rfind("serving", 0) == 0;
        },
        timeout);
    if (!ok)
        FAIL("not a serving master: role " << last.role << ", " << last.state << "\n"
                                           << daemon.log());
}

std::vector<core::Envelope> read_all(const Daemon& daemon, const std::string& stream) {
    auto client = daemon.client();
    auto info = client->stream_info(stream);
    REQUIRE(info);
    std::vector<core::Envelope> out;
    if (info->event_count == 0) return out;
    auto sub = client->subscribe({.target = stream}, [&](const core::EnvelopeView& e) {
        out.push_back(core::Envelope::from_view(e));
    });
    REQUIRE(sub);
    REQUIRE(client->run_until([&] { return out.size() >= info->event_count; },
                              std::chrono::seconds(60)));
    REQUIRE(out.size() == info->event_count);
    REQUIRE(out.back().seq == info->last_seq);
    return out;
}

void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::filesystem::remove_all(to);
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

std::vector<Outcome> publish_with_ids(net::Client& client, const std::string& stream,
                                      std::uint64_t first_id, std::uint64_t count,
                                      std::size_t batch, std::size_t in_flight) {
    std::vector<Outcome> outcomes;
    outcomes.reserve(count / batch + 1);
    for (std::uint64_t i = 0; i < count; i += batch) {
        Outcome o;
        for (std::uint64_t j = i; j < std::min<std::uint64_t>(count, i + batch); ++j) {
            o.ids.push_back(event_id(first_id + j));
            o.payloads.push_back(fmt::format("{}-{}", stream, first_id + j));
        }
        outcomes.push_back(std::move(o));
    }
    std::size_t next = 0, done = 0;
    while (done < outcomes.size()) {
        while (next < outcomes.size() && next - done < in_flight) {
            Outcome& o = outcomes[next];
            std::vector<core::EventDraft> events;
            for (std::size_t k = 0; k < o.ids.size(); ++k) {
                events.push_back({o.ids[k], "t", {}, core::as_bytes(o.payloads[k])});
            }
            client.publish_async(stream, events, {},
                                 [&o](core::Result<net::PublishReceipt> r) { o.result = r; });
            ++next;
        }
        REQUIRE(client.run_until(
            [&] {
                while (done < next && outcomes[done].result) ++done;
                return done == next;
            },
            std::chrono::seconds(60)));
    }
    return outcomes;
}

std::vector<Outcome> publish_until(std::unique_ptr<net::Client> client, const std::string& stream,
                                   std::uint64_t first_id, const std::atomic<bool>& stop,
                                   const std::function<void(const Outcome&)>& answered,
                                   std::chrono::milliseconds pause) {
    constexpr std::size_t in_flight_max = 8;
    constexpr auto hang = std::chrono::seconds(30);
    std::vector<Outcome> all;
    if (!client) return all;
    std::deque<Outcome> flight;  // stable addresses for the callbacks
    std::uint64_t id = first_id;
    auto settle = [&](std::size_t keep) {
        (void)client->run_until(
            [&] {
                while (!flight.empty() && flight.front().result) {
                    all.push_back(std::move(flight.front()));
                    flight.pop_front();
                }
                return flight.size() <= keep;
            },
            hang);
    };
    while (!stop.load()) {
        Outcome& o = flight.emplace_back();
        std::vector<core::EventDraft> events;
        for (int k = 0; k < 5; ++k, ++id) {
            o.ids.push_back(event_id(id));
            o.payloads.push_back(fmt::format("{}-{}", stream, id));
        }
        for (std::size_t k = 0; k < o.ids.size(); ++k) {
            events.push_back({o.ids[k], "t", {}, core::as_bytes(o.payloads[k])});
        }
        client->publish_async(stream, events, {},
                              [&o, &answered](core::Result<net::PublishReceipt> r) {
                                  o.result = r;
                                  o.answered = std::chrono::steady_clock::now();
                                  if (answered) answered(o);
                              });
        settle(in_flight_max - 1);
        if (pause.count() > 0) (void)client->run_for(pause);
    }
    settle(0);
    for (auto& o : flight) all.push_back(std::move(o));  // no answer: a hang
    return all;
}

void check_acked_present(const std::vector<Outcome>& outcomes,
                         const std::vector<core::Envelope>& events) {
    std::map<core::EventId, core::Seq> at;
    for (const core::Envelope& e : events) {
        INFO("seq " << e.seq.value());
        CHECK(at.emplace(e.id, e.seq).second);  // no id twice
    }
    for (const Outcome& o : outcomes) {
        if (!o.result || !*o.result) continue;
        const net::PublishReceipt& r = **o.result;
        std::uint64_t next = r.first_seq.value();
        for (std::size_t k = 0; k < o.ids.size(); ++k) {
            auto it = at.find(o.ids[k]);
            INFO("acknowledged event " << o.payloads[k]);
            REQUIRE(it != at.end());
            // Accepted into a slave's outbox: ordered later, at a seq of its own.
            if (r.kind == core::protocol::AckKind::accepted) continue;
            bool duplicate = false;
            for (const auto& d : r.duplicates) {
                if (d.index == k) {
                    CHECK(it->second == d.seq);
                    duplicate = true;
                }
            }
            if (!duplicate) CHECK(it->second == core::Seq{next++});
        }
    }
}

std::vector<core::Envelope> quarantined(const Daemon& daemon) {
    auto client = daemon.client();
    auto list = client->quarantine_list("");
    REQUIRE(list);
    std::vector<core::Envelope> out;
    for (const auto& q : list->streams) {
        auto page = client->quarantine_read(q.stream, core::Seq{0}, 0);
        while (true) {
            REQUIRE(page);
            out.insert(out.end(), page->entries.begin(), page->entries.end());
            if (!page->next) break;
            page = client->quarantine_read(q.stream, *page->next, 0);
        }
    }
    return out;
}

void check_acked_not_quarantined(const std::vector<Outcome>& outcomes,
                                 const std::vector<core::Envelope>& quarantine) {
    std::set<core::EventId> removed;
    for (const core::Envelope& e : quarantine) removed.insert(e.id);
    for (const Outcome& o : outcomes) {
        if (!o.result || !*o.result) continue;
        for (std::size_t k = 0; k < o.ids.size(); ++k) {
            INFO("acknowledged event " << o.payloads[k] << " is in quarantine");
            CHECK_FALSE(removed.contains(o.ids[k]));
        }
    }
}

void wait_following(const Daemon& daemon, const std::string& master,
                    std::chrono::milliseconds timeout) {
    core::protocol::StatusReply last;
    const bool ok = wait_until(
        [&] {
            last = status_of(daemon);
            if (last.master != master) return false;
            for (const auto& p : last.peers) {
                if (p.node_id == master) return p.connected;
            }
            return false;
        },
        timeout);
    if (!ok) {
        FAIL("not following " << master << ": master " << last.master << ", " << last.state << "\n"
                              << daemon.log());
    }
}

core::protocol::StreamDescription wait_for_copy(const Daemon& daemon, const std::string& stream,
                                                core::Seq last_seq, const core::Digest& last_hash,
                                                std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    core::protocol::StreamDescription d;
    auto client = daemon.client();
    while (std::chrono::steady_clock::now() < deadline) {
        auto info = client->stream_info(stream);
        if (info) {
            d = *info;
            if (d.last_seq == last_seq && d.last_hash == last_hash) return d;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("stream " << stream << " did not reach seq " << last_seq.value() << " (at "
                   << d.last_seq.value() << ")\n"
                   << daemon.log());
    return d;
}

}  // namespace spirit::test
