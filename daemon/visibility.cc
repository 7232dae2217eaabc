#include "daemon/visibility.h"

namespace spirit::daemon {

Visibility::Visibility(std::function<core::Seq(const std::string&)> initial)
    : initial_(std::move(initial)) {}

core::Seq Visibility::visible(const std::string& stream) {
    auto it = visible_.find(stream);
    if (it != visible_.end()) return it->second;
    const core::Seq first = initial_(stream);
    visible_.emplace(stream, first);
    return first;
}

void Visibility::advance(const std::string& stream, core::Seq seq) {
    auto it = visible_.find(stream);
    if (it == visible_.end()) {
        it = visible_.emplace(stream, initial_(stream)).first;
    }
    if (seq <= it->second) {
        // Still tell a first look: a new stream's subscribers must learn of it.
        if (seq == core::Seq{0} && listener_ != nullptr) listener_->stream_visible(stream, seq);
        return;
    }
    it->second = seq;
    if (listener_ != nullptr) listener_->stream_visible(stream, seq);
}

void Visibility::cut(const std::string& stream, core::Seq seq) {
    auto it = visible_.find(stream);
    if (it != visible_.end() && it->second > seq) it->second = seq;
    if (listener_ != nullptr) listener_->stream_cut(stream, seq);
}

void Visibility::forget(const std::string& stream) {
    visible_.erase(stream);
}

}  // namespace spirit::daemon
