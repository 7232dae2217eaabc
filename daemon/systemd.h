// daemon/systemd.h: readiness, stopping and watchdog notifications for a
// Type=notify unit (libsystemd's sd_notify). Outside systemd they do nothing.
#pragma once

#include <cstdint>

namespace spirit::daemon::systemd {

void notify_ready();
void notify_stopping();
void notify_watchdog();
// The watchdog interval systemd asked for (WatchdogSec), or 0.
std::uint64_t watchdog_interval_ms();

}  // namespace spirit::daemon::systemd
