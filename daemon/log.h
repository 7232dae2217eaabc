// daemon/log.h: structured log lines to stderr (spdlog): UTC timestamp,
// level, message with key=value pairs. One place sets the format.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace spirit::daemon {

// Sets the level ("trace" .. "error") and the line format of the default
// logger. REQUIRES: `level` was validated by the config.
void init_logging(std::string_view level);

}  // namespace spirit::daemon
