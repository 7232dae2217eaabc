// core/node_id.h: NodeId, the name of a node (its config `node.id`), as a
// distinct type so that a node can never be passed where a stream name is
// expected. Std only: topology/ uses it.
#pragma once

#include <compare>
#include <string>
#include <string_view>
#include <utility>

namespace spirit::core {

// 1..64 bytes of [A-Za-z0-9_.-] (the config checks the characters; this
// type only carries them). Ordered by bytes: ties between nodes break on it.
class NodeId {
 public:
    NodeId() = default;
    explicit NodeId(std::string value) : value_(std::move(value)) {}
    explicit NodeId(std::string_view value) : value_(value) {}
    explicit NodeId(const char* value) : value_(value) {}

    const std::string& value() const { return value_; }
    bool empty() const { return value_.empty(); }

    friend auto operator<=>(const NodeId&, const NodeId&) = default;
    friend bool operator==(const NodeId&, const NodeId&) = default;

 private:
    std::string value_;
};

}  // namespace spirit::core
