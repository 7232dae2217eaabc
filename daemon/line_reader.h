// daemon/line_reader.h: reads lines from a file descriptor on its own
// thread, for `spirit pub` reading standard input while its client loop
// publishes: a line is handed over as soon as it is complete, however long
// the input stays open (`tail -f log | spirit pub STREAM`).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace spirit::daemon {

struct LineReaderOptions {
    int fd = 0;                               // read, never closed
    std::size_t line_bytes_max = 1u << 20;    // a longer line ends the input with an error
    std::size_t queued_bytes_max = 8u << 20;  // the thread stops reading while this much waits
};

// Lifecycle: the constructor starts the thread; the destructor stops and
// joins it, even while the input stays open. Thread: take(), done() and
// error() from one consumer thread; `ready` runs on the reader's thread
// whenever lines arrive or the input ends (it must be thread-safe: wake a
// loop, signal a condition).
//
// Lines are split on '\n' (a "\r\n" keeps its '\r'); a last line without
// a newline counts. Memory is bounded by queued_bytes_max plus one line.
class LineReader {
 public:
    LineReader(LineReaderOptions options, std::function<void()> ready);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // Up to `lines_max` complete lines, oldest first, taken off the queue.
    std::vector<std::string> take(std::size_t lines_max);
    // Whether lines wait to be taken.
    bool has_lines() const;
    // The input ended (EOF, a read error or an over-long line) and every
    // line was taken.
    bool done() const;
    // Why the input ended early: a read error (system category) or an
    // over-long line (limit_exceeded, naming the line number).
    std::optional<core::Error> error() const;

 private:
    void run();
    void push_line(std::string line);

    LineReaderOptions options_;
    std::function<void()> ready_;
    int stop_pipe_[2] = {-1, -1};
    mutable std::mutex mutex_;
    std::condition_variable room_;
    std::deque<std::string> lines_;
    std::size_t queued_bytes_ = 0;
    std::uint64_t lines_read_ = 0;
    bool ended_ = false;
    bool stopping_ = false;
    std::optional<core::Error> error_;
    std::thread thread_;
};

}  // namespace spirit::daemon
