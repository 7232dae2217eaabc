#include "daemon/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace spirit::daemon {

void init_logging(std::string_view level) {
    auto logger = spdlog::stderr_logger_mt("spiritd");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
    spdlog::set_level(spdlog::level::from_str(std::string(level)));
    spdlog::flush_on(spdlog::level::info);
}

}  // namespace spirit::daemon
