// net/pipe_reader.h: reads the read end of a pipe on the loop thread, for
// bytes a helper thread writes into the other end (the store's compacting
// copy during a backup). Reading pauses and resumes like a connection's, so
// a writer on the other end blocks while the loop's consumer is full.
//
// Ownership: the reader owns the file descriptor and a heap-allocated libuv
// handle freed by its close callback, so it may be destroyed at any time,
// even from inside its own callbacks. Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "core/bytes.h"
#include "core/result.h"
#include "net/loop.h"

namespace spirit::net {

class PipeReader {
 public:
    // Bytes read; the view is valid only during the call.
    using Data = std::function<void(core::ByteView)>;
    // The writer closed its end (nullopt), or reading failed.
    using End = std::function<void(std::optional<core::Error>)>;

    // Starts reading `fd` (which it takes over, and closes with itself).
    // Errors are libuv's, naming the fd; `fd` is closed then too.
    [[nodiscard]] static core::Result<std::unique_ptr<PipeReader>> open(Loop& loop, int fd,
                                                                        Data data, End end);
    ~PipeReader();
    PipeReader(const PipeReader&) = delete;
    PipeReader& operator=(const PipeReader&) = delete;

    // Stops delivering data until resume(). Idempotent.
    void pause();
    void resume();

    struct State;

 private:
    explicit PipeReader(State* state) : state_(state) {}
    State* state_;  // freed by the close callback
};

}  // namespace spirit::net
