#include "daemon/cli/progress.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "daemon/cli/status_format.h"

namespace spirit::daemon::cli {

namespace {

std::string amount(std::uint64_t n, ProgressUnit unit) {
    return unit == ProgressUnit::bytes ? human_bytes(n) : fmt::format("{} events", n);
}

std::string rate(const ProgressState& s, ProgressUnit unit) {
    if (s.elapsed_s <= 0) return "";
    const auto per_second = static_cast<std::uint64_t>(static_cast<double>(s.done) / s.elapsed_s);
    return amount(per_second, unit) + "/s";
}

// Seconds left at the rate so far; negative when not known.
double seconds_left(const ProgressState& s) {
    if (s.finished) return 0;
    if (s.total == 0 || s.done == 0 || s.done >= s.total || s.elapsed_s <= 0) return -1;
    return static_cast<double>(s.total - s.done) * s.elapsed_s / static_cast<double>(s.done);
}

std::string duration(double seconds) {
    const auto total = static_cast<std::uint64_t>(seconds + 0.5);
    if (total < 60) return fmt::format("{} s", total);
    if (total < 3600) return fmt::format("{}:{:02} min", total / 60, total % 60);
    return fmt::format("{}:{:02}:{:02} h", total / 3600, total / 60 % 60, total % 60);
}

// Percent done, kept below 100 until the end (the total is an estimate).
unsigned percent(const ProgressState& s) {
    if (s.finished) return 100;
    if (s.total == 0) return 0;
    const double p = 100.0 * static_cast<double>(s.done) / static_cast<double>(s.total);
    return static_cast<unsigned>(std::min(p, 99.0));
}

}  // namespace

std::string progress_bar_line(const std::string& label, const ProgressState& s, ProgressUnit unit) {
    constexpr unsigned width = 24;
    const unsigned filled = std::min(percent(s) * width / 100, width);
    std::string bar(filled, '#');
    bar.append(width - filled, '.');
    const double left = seconds_left(s);
    std::string line =
        fmt::format("{}  [{}] {:3}%  {}", label, bar, percent(s), amount(s.done, unit));
    if (s.total > 0) line += " of ~" + amount(s.total, unit);
    if (!rate(s, unit).empty()) line += "  " + rate(s, unit);
    if (!s.finished) line += left >= 0 ? "  ETA " + duration(left) : "  ETA --";
    return line;
}

std::string progress_plain_line(const std::string& label, const ProgressState& s,
                                ProgressUnit unit) {
    std::string line = fmt::format("{}: {}", label, amount(s.done, unit));
    if (s.total > 0) {
        line += fmt::format(" of about {} ({}%)", amount(s.total, unit), percent(s));
    }
    if (!rate(s, unit).empty()) line += ", " + rate(s, unit);
    const double left = seconds_left(s);
    if (!s.finished && left >= 0) line += ", about " + duration(left) + " left";
    if (s.finished) line += fmt::format(", done in {}", duration(s.elapsed_s));
    return line;
}

Progress::Style Progress::style_for(std::FILE* out) {
    return ::isatty(::fileno(out)) == 1 ? Style::bar : Style::lines;
}

Progress::Progress(std::string label, std::uint64_t total, ProgressUnit unit, Style style,
                   std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      unit_(unit),
      style_(style),
      out_(out),
      started_(std::chrono::steady_clock::now()),
      last_draw_(started_) {}

ProgressState Progress::state(std::uint64_t done) const {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return ProgressState{done, total_, elapsed};
}

void Progress::update(std::uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    const auto every =
        style_ == Style::bar ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
    if (now - last_draw_ < every) return;
    last_draw_ = now;
    if (style_ == Style::bar) {
        // \x1b[K clears what a longer line before left behind.
        std::fprintf(out_, "\r%s\x1b[K", progress_bar_line(label_, state(done), unit_).c_str());
    } else {
        std::fprintf(out_, "%s\n", progress_plain_line(label_, state(done), unit_).c_str());
    }
    std::fflush(out_);
}

void Progress::clear() {
    if (style_ != Style::bar) return;
    std::fputs("\r\x1b[K", out_);
    std::fflush(out_);
    last_draw_ = started_;  // redraw at the next update
}

void Progress::finish(std::uint64_t done) {
    ProgressState s = state(done);
    s.total = done;  // the real total, now it is known
    s.finished = true;
    if (style_ == Style::bar) {
        std::fprintf(out_, "\r%s\x1b[K\n", progress_bar_line(label_, s, unit_).c_str());
    } else {
        std::fprintf(out_, "%s\n", progress_plain_line(label_, s, unit_).c_str());
    }
    std::fflush(out_);
}

}  // namespace spirit::daemon::cli
