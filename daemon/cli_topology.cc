#include "daemon/cli_topology.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "core/identity.h"
#include "core/topology_codec.h"
#include "daemon/cli/topology_format.h"

namespace spirit::daemon::cli {

namespace {

// Writes a new key file and prints its public key, for [[cluster.members]].
int keygen(const std::string& out) {
    const core::Identity identity = core::Identity::generate();
    if (auto saved = identity.save(out); !saved) return fail(saved.error());
    std::printf("%s\n", core::public_key_text(identity.public_key()).c_str());
    std::fprintf(stderr,
                 "spirit: wrote %s (mode 0600); give this node node.key_file = \"%s\" and list "
                 "the public key above as its public_key in every node's [[cluster.members]]\n",
                 out.c_str(), out.c_str());
    return ok;
}

// Prints each event of the node's `$topology`, decoded, as it is stored;
// until the limits, or the subscription ends.
int follow_topology(net::Client& client, const std::string& node, const TopologyCommands& c) {
    net::SubscribeOptions options;
    options.target = "$topology";
    options.from = c.topology.from_now ? core::protocol::From::new_ : core::protocol::From::first;
    if (c.topology.limits.count > 0) {
        options.credit_events = std::min(options.credit_events, c.topology.limits.count);
    }
    std::uint64_t printed = 0;
    int status = ok;
    auto subscription = client.subscribe(options, [&](const core::EnvelopeView& e) {
        if (c.topology.limits.count > 0 && printed >= c.topology.limits.count) return;
        auto sealed = core::decode_topology_event(e.payload);
        if (!sealed) {
            // The daemon checked it when it stored it: say so, go on.
            fail(core::Error{sealed.error().code,
                             fmt::format("{} $topology seq {}: {}", node, e.seq.value(),
                                         sealed.error().detail)});
            status = failed;
            return;
        }
        const std::string line = c.topology.json ? topology_event_json(e.seq, sealed->event)
                                                 : topology_event_text(e.seq, sealed->event);
        std::printf("%s\n", line.c_str());
        ++printed;
        if (c.topology.limits.count == 0) std::fflush(stdout);
    });
    if (!subscription) return fail(subscription.error());
    if (auto code = follow(client, **subscription, printed, c.topology.limits)) return *code;
    return status;
}

int topology(const Global& g, const TopologyCommands& c) {
    if (!c.topology.follow && (c.topology.from_now || c.topology.limits.count > 0 ||
                               c.topology.limits.idle_exit_ms > 0)) {
        std::fprintf(stderr, "spirit: --from-now, --count and --idle-exit-ms go with --follow\n");
        return usage;
    }
    auto client = connect(g);
    if (!client) return fail(client.error());
    auto t = (*client)->topology();
    if (!t) return fail(t.error());
    if (c.topology.follow) {
        if (t->role == "single") {
            return fail(core::Error{
                core::make_error_code(core::errc::invalid_argument),
                fmt::format("node {} runs alone (its config lists no [[cluster.members]]): it "
                            "keeps no $topology to follow",
                            t->node_id)});
        }
        return follow_topology(**client, t->node_id, c);
    }
    const std::string out = c.topology.json ? topology_json(*t) + "\n" : topology_text(*t);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return ok;
}

}  // namespace

void add_topology_commands(CLI::App& app, TopologyCommands& c) {
    c.keygen_cmd = app.add_subcommand(
        "keygen", "write a new node identity key file (Ed25519) and print its public key");
    c.keygen_cmd->add_option("--out,-o", c.out, "the key file to create (never replaced)")
        ->capture_default_str();
    c.topology_cmd = app.add_subcommand(
        "topology",
        "what this node knows of its cluster: members, reachability, epoch, the master, each "
        "copy's position and lag, $topology");
    c.topology_cmd->add_flag("--json", c.topology.json,
                             "one JSON object (with --follow: one per event)");
    c.topology_cmd->add_flag("--follow,-f", c.topology.follow,
                             "print each $topology event, decoded, as it is stored (from the "
                             "first)");
    c.topology_cmd->add_flag("--from-now", c.topology.from_now,
                             "--follow: only the events stored from now on");
    c.topology_cmd->add_option("--count", c.topology.limits.count, "--follow: exit after N events");
    c.topology_cmd->add_option("--idle-exit-ms", c.topology.limits.idle_exit_ms,
                               "--follow: exit after this long without an event (0: never)");
}

std::optional<int> run_topology_command(const Global& g, const TopologyCommands& c) {
    if (c.keygen_cmd->parsed()) return keygen(c.out);
    if (c.topology_cmd->parsed()) return topology(g, c);
    return std::nullopt;
}

}  // namespace spirit::daemon::cli
