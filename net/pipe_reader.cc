#include "net/pipe_reader.h"

#include <unistd.h>
#include <uv.h>

#include <array>

#include <fmt/format.h>

#include "net/uv_error.h"

namespace spirit::net {

struct PipeReader::State {
    uv_pipe_t handle;
    PipeReader::Data data;
    PipeReader::End end;
    std::array<char, 64 * 1024> buffer;  // one read in flight
    bool reading = false;
    bool closed = false;  // the wrapper is gone or the end was reported
};

namespace {

void close_handle(PipeReader::State* s) {
    uv_close(reinterpret_cast<uv_handle_t*>(&s->handle),
             [](uv_handle_t* h) { delete static_cast<PipeReader::State*>(h->data); });
}

void start(PipeReader::State* s) {
    if (s->reading || s->closed) return;
    s->reading = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&s->handle),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* state = static_cast<PipeReader::State*>(h->data);
            *buf = uv_buf_init(state->buffer.data(), static_cast<unsigned>(state->buffer.size()));
        },
        [](uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) noexcept {
            auto* state = static_cast<PipeReader::State*>(h->data);
            if (state->closed || nread == 0) return;
            if (nread > 0) {
                // Copy: the callback may destroy the reader.
                auto data = state->data;
                data(core::ByteView(reinterpret_cast<const std::byte*>(buf->base),
                                    static_cast<std::size_t>(nread)));
                return;
            }
            uv_read_stop(h);
            state->reading = false;
            state->closed = true;
            auto end = state->end;
            if (nread == UV_EOF) {
                end(std::nullopt);
            } else {
                end(uv_error(static_cast<int>(nread), "reading a pipe"));
            }
        });
}

}  // namespace

core::Result<std::unique_ptr<PipeReader>> PipeReader::open(Loop& loop, int fd, Data data, End end) {
    auto* s = new State{};
    s->data = std::move(data);
    s->end = std::move(end);
    uv_pipe_init(loop.get(), &s->handle, 0);
    s->handle.data = s;
    if (int rc = uv_pipe_open(&s->handle, fd); rc != 0) {
        ::close(fd);
        close_handle(s);
        return core::Unexpected{uv_error(rc, fmt::format("opening pipe fd {}", fd))};
    }
    start(s);
    return std::unique_ptr<PipeReader>(new PipeReader(s));
}

PipeReader::~PipeReader() {
    state_->closed = true;
    close_handle(state_);  // closes the fd too
}

void PipeReader::pause() {
    if (!state_->reading) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&state_->handle));
    state_->reading = false;
}

void PipeReader::resume() {
    start(state_);
}

}  // namespace spirit::net
