// daemon/ops/restore.h: `spiritd --restore FILE`: makes a data dir's store
// from a backup (spirit backup), checks it, and exits; the node then starts
// as usual and, in a cluster, catches up from its peers.
#pragma once

#include <filesystem>

#include "daemon/config.h"

namespace spirit::daemon::ops {

// Installs `backup` as the store of config.node.data_dir (which must hold
// none), verifies every stream's chain in it, and records that the copies
// came from a backup, so that in a cluster they count in a completion only
// once they caught up again. Prints what it did; returns spiritd's exit
// code: 0 done; 1 the data dir holds a store or is in use, an I/O error, a
// broken chain (the restored store is removed again); 2 FILE is not a
// spirit backup.
int restore(const Config& config, const std::filesystem::path& backup);

}  // namespace spirit::daemon::ops
