// daemon/write_path.h: the one owner of a publish's way from a session to
// its acknowledgement: ordered here (the master, or a node alone) or
// forwarded (a slave) → durable in the store → copies (immediate streams
// wait for `acks` verified copies) → visible to consumers. A change of
// role is seen here only through the Cluster: nothing else decides.
//
// - A node alone orders every publish in epoch 1 (or the epoch its copies
//   were confirmed in) and acknowledges it `durable` once committed.
// - A master orders a publish once its stream is complete in this epoch
//   (daemon/cluster/master.h); until then the publish waits, up to
//   cluster.ack_timeout_ms, then fails with unavailable. Eventual streams
//   are acknowledged `durable` at the master's commit; immediate ones
//   `replicated` once `acks` verified copies hold them, naming the holders.
// - A slave forwards (daemon/cluster/forwarder.h).
// A new stream's policy is what `$topology` says of it, else the master's
// choice (the first matching [[streams]] entry), recorded with the stream,
// replicated with it, and in `$topology` (StreamCreated).
//
// Loop thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "core/protocol.h"
#include "daemon/cluster/forwarder.h"
#include "daemon/config.h"
#include "net/loop.h"
#include "storage/store.h"

namespace spirit::daemon {

class Cluster;
class Visibility;

class WritePath {
 public:
    // `cluster`: nullptr for a node alone.
    WritePath(const Config& config, storage::Store& store, Visibility& visibility,
              Cluster* cluster);

    // A client's publish: ordered here or forwarded. `reply` is called
    // exactly once, perhaps before this returns.
    void publish(const PublishRequest& request, PublishReply reply);
    // Orders a publish on this node (a master, or a node alone): a client's,
    // a forward from a slave, or an outbox entry.
    void order(const PublishRequest& request, PublishReply reply);

    // Creates a stream with `policy` (spirit stream create): on the master,
    // once it takes writes; in a cluster `done` once a majority of voters
    // hold its StreamCreated.
    void create_stream(const std::string& stream, const core::StreamPolicy& policy,
                       std::function<void(core::Result<void>)> done);
    // Gives a stream `policy` (spirit stream alter): only its retention may
    // change. Alone, at once; in a cluster on the master, once a majority
    // of voters hold its StreamPolicyChanged (every other copy takes it as
    // its node learns it).
    void alter_stream(const std::string& stream, const core::StreamPolicy& policy,
                      std::function<void(core::Result<void>)> done);
    // Deletes a stream (spirit stream delete): alone, at once; in a cluster
    // on the master, once a majority of voters hold its StreamDeleted
    // (every other copy goes as its node learns it). `deleted` runs when
    // this node's copy is gone.
    void delete_stream(const std::string& stream, std::function<void(core::Result<void>)> done,
                       std::function<void()> deleted);

    // This node's copy's policy of `stream` (the master's record), else the
    // one `$topology` gives it, or nullopt if neither names one.
    std::optional<core::StreamPolicy> policy_of(std::string_view stream) const;
    // The visible seq of a stream this node has not seen move yet.
    core::Seq initial_visible(const std::string& stream) const;

 private:
    void append(const PublishRequest& request, PublishReply reply);
    void committed(const std::string& stream, const core::StreamPolicy& policy,
                   storage::AppendResult result, PublishReply reply);
    core::Epoch epoch_for(const std::optional<storage::StreamInfo>& info) const;
    // Runs `act` alone at once; in a cluster on the master once `stream`
    // takes writes, else `done` gets not_master/unavailable.
    void when_master_writable(const std::string& stream,
                              const std::function<void(core::Result<void>)>& done,
                              std::function<void()> act);
    // `stream`'s record here, or not_found naming it.
    core::Result<storage::StreamInfo> existing(const std::string& stream) const;
    // not_master naming the master, or unavailable while none is known.
    core::Error not_here() const;

    const Config& config_;
    storage::Store& store_;
    Visibility& visibility_;
    Cluster* cluster_;
};

}  // namespace spirit::daemon
