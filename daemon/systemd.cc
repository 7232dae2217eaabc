#include "daemon/systemd.h"

#include <systemd/sd-daemon.h>

namespace spirit::daemon::systemd {

void notify_ready() {
    sd_notify(0, "READY=1\nSTATUS=serving");
}
void notify_stopping() {
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}
void notify_watchdog() {
    sd_notify(0, "WATCHDOG=1");
}

std::uint64_t watchdog_interval_ms() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
    return usec / 1000;
}

}  // namespace spirit::daemon::systemd
