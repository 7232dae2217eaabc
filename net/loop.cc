#include "net/loop.h"

#include <uv.h>

#include "core/assert.h"

namespace spirit::net {

Loop::Loop() : loop_(std::make_unique<uv_loop_t>()) {
    int rc = uv_loop_init(loop_.get());
    SPIRIT_ASSERT_MSG(rc == 0, "uv_loop_init failed");
}

Loop::~Loop() {
    uv_walk(
        loop_.get(),
        [](uv_handle_t* handle, void*) {
            if (!uv_is_closing(handle)) uv_close(handle, nullptr);
        },
        nullptr);
    // Handles closed without a callback here belong to wrappers that were
    // leaked; their memory goes with the process. Run until every close
    // callback has run.
    while (uv_run(loop_.get(), UV_RUN_NOWAIT) != 0) {
    }
    int rc = uv_loop_close(loop_.get());
    SPIRIT_ASSERT_MSG(rc == 0, "the loop still has handles after closing them all");
}

void Loop::run() {
    uv_run(loop_.get(), UV_RUN_DEFAULT);
}

bool Loop::run_once(bool wait) {
    return uv_run(loop_.get(), wait ? UV_RUN_ONCE : UV_RUN_NOWAIT) != 0;
}

void Loop::stop() {
    uv_stop(loop_.get());
}

std::uint64_t Loop::now_ms() const {
    return uv_now(loop_.get());
}

void Loop::update_time() {
    uv_update_time(loop_.get());
}

namespace {

struct Work {
    uv_work_t request;
    std::function<void()> work;
    std::function<void()> after;
};

}  // namespace

void Loop::queue_work(std::function<void()> work, std::function<void()> after) {
    auto* w = new Work{};
    w->request.data = w;
    w->work = std::move(work);
    w->after = std::move(after);
    int rc = uv_queue_work(
        loop_.get(), &w->request, [](uv_work_t* r) { static_cast<Work*>(r->data)->work(); },
        [](uv_work_t* r, int) {
            std::unique_ptr<Work> owned(static_cast<Work*>(r->data));
            owned->after();
        });
    SPIRIT_ASSERT_MSG(rc == 0, "uv_queue_work failed");
}

// --- Timer ---

struct Timer::State {
    uv_timer_t handle;
    std::function<void()> fire;
};

Timer::Timer(Loop& loop) : state_(new State{}) {
    uv_timer_init(loop.get(), &state_->handle);
    state_->handle.data = state_;
}

Timer::~Timer() {
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
             [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

void Timer::start(std::uint64_t timeout_ms, std::uint64_t repeat_ms, std::function<void()> fire) {
    state_->fire = std::move(fire);
    uv_timer_start(
        &state_->handle,
        [](uv_timer_t* h) {
            auto* s = static_cast<State*>(h->data);
            // Copy: the callback may destroy the Timer (the state lives on
            // until the close callback, but `fire` may be reassigned).
            auto fire_now = s->fire;
            fire_now();
        },
        timeout_ms, repeat_ms);
}

void Timer::stop() {
    uv_timer_stop(&state_->handle);
}

// --- Async ---

struct Async::State {
    uv_async_t handle;
    std::function<void()> wake;
};

Async::Async(Loop& loop, std::function<void()> wake) : state_(new State{}) {
    state_->wake = std::move(wake);
    uv_async_init(loop.get(), &state_->handle, [](uv_async_t* h) {
        auto* s = static_cast<State*>(h->data);
        s->wake();
    });
    state_->handle.data = state_;
}

Async::~Async() {
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
             [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

void Async::send() {
    uv_async_send(&state_->handle);
}

// --- SignalWatcher ---

struct SignalWatcher::State {
    uv_signal_t handle;
    std::function<void(int)> caught;
};

SignalWatcher::SignalWatcher(Loop& loop, int signal, std::function<void(int)> caught)
    : state_(new State{}) {
    state_->caught = std::move(caught);
    uv_signal_init(loop.get(), &state_->handle);
    state_->handle.data = state_;
    uv_signal_start(
        &state_->handle,
        [](uv_signal_t* h, int signum) {
            auto* s = static_cast<State*>(h->data);
            auto caught_now = s->caught;
            caught_now(signum);
        },
        signal);
}

SignalWatcher::~SignalWatcher() {
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
             [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

}  // namespace spirit::net
