// net/loop.h: the event loop and the small libuv handles the daemon and the
// client use (timers, cross-thread wake-ups, signals). Everything here runs
// on the loop's thread, except Async::send.
//
// Ownership: each handle wrapper owns a heap-allocated libuv handle whose
// memory is freed by its close callback, so a wrapper may be destroyed at
// any time (even from inside its own callback).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/result.h"

struct uv_loop_s;
struct uv_timer_s;
struct uv_async_s;
struct uv_signal_s;

namespace spirit::net {

class Loop {
 public:
    Loop();
    // Closes every handle still open, runs the loop until they are gone and
    // asserts the loop closed (libuv's leak check).
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // Runs until stop() or until no active handle is left. The one
    // unbounded loop of the process.
    void run();
    // Runs one iteration, blocking for I/O if `wait`; returns whether
    // handles are still active.
    bool run_once(bool wait);
    void stop();
    // Milliseconds of the loop's clock (cached per iteration).
    std::uint64_t now_ms() const;
    // Refreshes the cached clock, so a timer started next counts from now.
    void update_time();

    // Runs `work` on libuv's thread pool, then `after` on the loop thread.
    // For blocking work (a full-stream verify) that must not stall the loop.
    void queue_work(std::function<void()> work, std::function<void()> after);

    uv_loop_s* get() { return loop_.get(); }

 private:
    std::unique_ptr<uv_loop_s> loop_;
};

class Timer {
 public:
    explicit Timer(Loop& loop);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Calls `fire` after `timeout_ms`, then every `repeat_ms` if non-zero.
    void start(std::uint64_t timeout_ms, std::uint64_t repeat_ms, std::function<void()> fire);
    void stop();

 private:
    struct State;
    State* state_;  // freed by the handle's close callback
};

// Wakes the loop from another thread; `wake` runs on the loop thread. Sends
// coalesce: one wake may stand for many sends, so `wake` drains everything.
class Async {
 public:
    Async(Loop& loop, std::function<void()> wake);
    ~Async();
    Async(const Async&) = delete;
    Async& operator=(const Async&) = delete;

    // Thread-safe.
    void send();

 private:
    struct State;
    State* state_;
};

// Delivers a signal (SIGTERM, SIGINT, SIGHUP) on the loop thread.
class SignalWatcher {
 public:
    SignalWatcher(Loop& loop, int signal, std::function<void(int)> caught);
    ~SignalWatcher();
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
    struct State;
    State* state_;
};

}  // namespace spirit::net
