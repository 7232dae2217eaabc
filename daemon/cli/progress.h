// daemon/cli/progress.h: progress of a long CLI command (spirit backup,
// spirit verify) with its rate and time left: a bar redrawn in place when
// the output is a terminal, plain lines (about one a second) otherwise,
// so a log or a pipe gets something readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace spirit::daemon::cli {

enum class ProgressUnit { bytes, events };

// Where a command is: `done` of about `total` (0: not known) after
// `elapsed_s` seconds.
struct ProgressState {
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    double elapsed_s = 0;
    bool finished = false;  // 100%, whatever the estimate said
};

// One redraw of the bar, without the carriage return:
// "backup  [#########...........]  45%  12.3 MiB of ~27.1 MiB  8.1 MiB/s  ETA 2 s"
std::string progress_bar_line(const std::string& label, const ProgressState& s, ProgressUnit unit);
// One plain line, without the newline:
// "backup: 12.3 MiB of about 27.1 MiB (45%), 8.1 MiB/s, about 2 s left"
std::string progress_plain_line(const std::string& label, const ProgressState& s,
                                ProgressUnit unit);

class Progress {
 public:
    enum class Style { bar, lines };
    // The bar on a terminal, lines otherwise.
    static Style style_for(std::FILE* out);

    Progress(std::string label, std::uint64_t total, ProgressUnit unit, Style style,
             std::FILE* out);
    // Redraws the bar at most ten times a second, prints a line at most once
    // a second.
    void update(std::uint64_t done);
    void set_total(std::uint64_t total) { total_ = total; }
    // The last redraw (and the bar's newline).
    void finish(std::uint64_t done);
    // Erases the bar, so a line printed next to the same terminal starts
    // clean (the next update draws it again). Nothing for lines.
    void clear();

 private:
    ProgressState state(std::uint64_t done) const;

    std::string label_;
    std::uint64_t total_;
    ProgressUnit unit_;
    Style style_;
    std::FILE* out_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace spirit::daemon::cli
