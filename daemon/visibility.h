// daemon/visibility.h: per stream, the last seq that consumers on this node
// may be served. It only moves forward, except when a repair cuts a copy
// (its divergent suffix went to quarantine).
//
// Who advances it: on a master, its commit for eventual streams and the
// watermark of `acks` verified copies for immediate ones (daemon/cluster/
// master.h); on a slave, its own commits of what the master sent. Nobody
// else. The subscriptions read it and are told when it moves.
//
// Loop thread only.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "core/ids.h"

namespace spirit::daemon {

// Told when a stream's visible seq moves (the subscriptions).
class VisibilityListener {
 public:
    virtual ~VisibilityListener() = default;
    virtual void stream_visible(const std::string& stream, core::Seq last) = 0;
    // The copy was cut after `seq`: what was visible beyond it is gone.
    virtual void stream_cut(const std::string& stream, core::Seq seq) = 0;
};

class Visibility {
 public:
    // `initial` gives a stream's visible seq the first time it is asked for
    // (after a start, or for a stream this node has not seen move yet).
    explicit Visibility(std::function<core::Seq(const std::string&)> initial);

    void set_listener(VisibilityListener* listener) { listener_ = listener; }

    core::Seq visible(const std::string& stream);
    // Moves `stream` forward to `seq` (never back) and tells the listener.
    void advance(const std::string& stream, core::Seq seq);
    // A repair cut the copy after `seq`.
    void cut(const std::string& stream, core::Seq seq);
    // The stream was deleted.
    void forget(const std::string& stream);

 private:
    std::function<core::Seq(const std::string&)> initial_;
    std::map<std::string, core::Seq, std::less<>> visible_;
    VisibilityListener* listener_ = nullptr;
};

}  // namespace spirit::daemon
