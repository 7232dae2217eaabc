// spiritd: parse the command line, load and check the config, open the
// store, serve until SIGTERM or SIGINT. A second signal exits at once.
//
// Exit codes: 0 clean shutdown; 1 a runtime failure (the store cannot be
// opened, a listener cannot bind); 2 bad command line or config.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include <optional>
#include "core/hash_chain.h"

#include "core/identity.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/ops/restore.h"
#include "daemon/server.h"
#include "daemon/systemd.h"
#include "net/loop.h"

using namespace spirit;

int main(int argc, char** argv) {
    CLI::App app{"spiritd: a peer-to-peer, store-and-forward event streaming daemon"};
    std::string config_path = "/etc/spirit/spirit.toml";
    bool check_only = false;
    bool version = false;
    std::string restore_file;
    app.add_option("-c,--config", config_path, "configuration file (TOML)")->capture_default_str();
    app.add_flag("--check-config", check_only, "check the configuration and exit (0: valid)");
    app.add_flag("--version", version, "print the version and exit");
    app.add_option("--restore", restore_file,
                   "make the data dir's store from a backup (spirit backup), verify it, exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (version) {
        std::printf("%s\n", daemon::server_version().c_str());
        return 0;
    }
    auto config = daemon::load_config(config_path);
    if (!config) {
        std::fprintf(stderr, "spiritd: %s\n", config.error().detail.c_str());
        return 2;
    }
    if (!core::init_crypto()) {
        std::fprintf(stderr, "spiritd: libsodium failed to initialise\n");
        return 1;
    }
    // A cluster member signs its $topology events: its key file must be
    // private and match its member entry.
    std::optional<core::Identity> identity;
    if (config->in_cluster()) {
        auto loaded = core::Identity::load(config->node.key_file);
        if (!loaded) {
            std::fprintf(stderr, "spiritd: %s: node.key_file: %s\n", config_path.c_str(),
                         loaded.error().detail.c_str());
            return 2;
        }
        if (loaded->public_key() != config->self_member().public_key) {
            std::fprintf(stderr,
                         "spiritd: %s: node.key_file %s has public key %s, but the "
                         "[[cluster.members]] entry of %s says %s\n",
                         config_path.c_str(), config->node.key_file.c_str(),
                         core::public_key_text(loaded->public_key()).c_str(),
                         config->node.id.c_str(),
                         core::public_key_text(config->self_member().public_key).c_str());
            return 2;
        }
        identity = std::move(*loaded);
    }
    if (check_only) {
        std::printf("%s: ok\n", config_path.c_str());
        return 0;
    }
    daemon::init_logging(config->log.level);
    if (!restore_file.empty()) return daemon::ops::restore(*config, restore_file);
    std::signal(SIGPIPE, SIG_IGN);

    int exit_code = 0;
    {
        net::Loop loop;
        auto server = daemon::Server::start(*config, loop, std::move(identity));
        if (!server) {
            spdlog::critical("{}", server.error().message());
            return 1;
        }
        int signals = 0;
        auto on_signal = [&](int signum) {
            if (++signals > 1) {
                spdlog::warn("second signal: exiting now");
                std::_Exit(1);
            }
            daemon::systemd::notify_stopping();
            (*server)->shutdown(signum == SIGINT ? "SIGINT" : "SIGTERM");
        };
        net::SignalWatcher term(loop, SIGTERM, on_signal);
        net::SignalWatcher interrupt(loop, SIGINT, on_signal);
        std::unique_ptr<net::Timer> watchdog;
        if (std::uint64_t interval = daemon::systemd::watchdog_interval_ms(); interval > 0) {
            watchdog = std::make_unique<net::Timer>(loop);
            watchdog->start(interval / 2, interval / 2, [] { daemon::systemd::notify_watchdog(); });
        }
        spdlog::info("{} node={} data_dir={} sync={} ready", daemon::server_version(),
                     config->node.id, config->node.data_dir.string(),
                     config->storage.sync == storage::SyncMode::always     ? "always"
                     : config->storage.sync == storage::SyncMode::periodic ? "periodic"
                                                                           : "none");
        daemon::systemd::notify_ready();
        loop.run();
        if (!(*server)->stopped()) exit_code = 1;
        server->reset();
    }
    return exit_code;
}
