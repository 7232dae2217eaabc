// tests/support/commit_waiter.h: for programs that drive a Store without an
// event loop. Binds the store's commit notifier; wait_and_drain() blocks
// until the writer reports a commit, then runs the finished callbacks.
#pragma once

#include <condition_variable>
#include <mutex>

#include "storage/store.h"

namespace spirit::test {

class CommitWaiter {
 public:
    explicit CommitWaiter(storage::Store& store) : store_(store) {
        store_.set_commit_notifier([this] {
            std::lock_guard lock(mutex_);
            committed_ = true;
            cv_.notify_one();
        });
    }

    void wait_and_drain() {
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return committed_; });
            committed_ = false;
        }
        store_.drain_completed();
    }

 private:
    storage::Store& store_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool committed_ = false;
};

}  // namespace spirit::test
