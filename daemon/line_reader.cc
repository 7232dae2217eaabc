#include "daemon/line_reader.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "core/assert.h"

namespace spirit::daemon {

LineReader::LineReader(LineReaderOptions options, std::function<void()> ready)
    : options_(options), ready_(std::move(ready)) {
    SPIRIT_ASSERT(::pipe(stop_pipe_) == 0);
    thread_ = std::thread([this] { run(); });
}

LineReader::~LineReader() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    room_.notify_all();
    // Wakes a poll() that waits for input that may never come.
    const char byte = 0;
    (void)!::write(stop_pipe_[1], &byte, 1);
    thread_.join();
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
}

std::vector<std::string> LineReader::take(std::size_t lines_max) {
    std::vector<std::string> out;
    {
        std::lock_guard lock(mutex_);
        while (!lines_.empty() && out.size() < lines_max) {
            queued_bytes_ -= lines_.front().size();
            out.push_back(std::move(lines_.front()));
            lines_.pop_front();
        }
    }
    if (!out.empty()) room_.notify_all();
    return out;
}

bool LineReader::has_lines() const {
    std::lock_guard lock(mutex_);
    return !lines_.empty();
}

bool LineReader::done() const {
    std::lock_guard lock(mutex_);
    return ended_ && lines_.empty();
}

std::optional<core::Error> LineReader::error() const {
    std::lock_guard lock(mutex_);
    return error_;
}

void LineReader::push_line(std::string line) {
    std::unique_lock lock(mutex_);
    // Back-pressure: stop reading (so the writer blocks) while the
    // consumer is behind.
    room_.wait(lock, [&] { return stopping_ || queued_bytes_ < options_.queued_bytes_max; });
    if (stopping_) return;
    ++lines_read_;
    queued_bytes_ += line.size();
    lines_.push_back(std::move(line));
}

void LineReader::run() {
    std::string partial;
    char buffer[64 * 1024];
    std::optional<core::Error> failure;
    while (true) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
        }
        pollfd fds[2] = {{options_.fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            failure = core::Error{std::error_code(errno, std::system_category()),
                                  fmt::format("waiting for input: {}", std::strerror(errno))};
            break;
        }
        if (fds[1].revents != 0) return;
        const ssize_t n = ::read(options_.fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            failure = core::Error{std::error_code(errno, std::system_category()),
                                  fmt::format("reading input: {}", std::strerror(errno))};
            break;
        }
        if (n == 0) break;
        std::size_t start = 0;
        const std::string_view chunk(buffer, static_cast<std::size_t>(n));
        bool pushed = false;
        for (std::size_t nl; (nl = chunk.find('\n', start)) != std::string_view::npos;
             start = nl + 1) {
            partial.append(chunk.substr(start, nl - start));
            if (partial.size() > options_.line_bytes_max) break;
            push_line(std::exchange(partial, {}));
            pushed = true;
        }
        if (partial.size() <= options_.line_bytes_max) partial.append(chunk.substr(start));
        if (pushed && ready_) ready_();
        if (partial.size() > options_.line_bytes_max) {
            std::lock_guard lock(mutex_);
            failure = core::Error{core::make_error_code(core::errc::limit_exceeded),
                                  fmt::format("input line {} is longer than {} bytes",
                                              lines_read_ + 1, options_.line_bytes_max)};
            partial.clear();
            break;
        }
    }
    if (!partial.empty()) push_line(std::move(partial));
    {
        std::lock_guard lock(mutex_);
        ended_ = true;
        error_ = std::move(failure);
    }
    if (ready_) ready_();
}

}  // namespace spirit::daemon
