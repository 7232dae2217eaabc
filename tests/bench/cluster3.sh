#!/usr/bin/env bash
# Starts three spiritd nodes on loopback, moves the elected master to
# node-a (spirit cluster set-master), runs `spirit bench` against it with the
# arguments given, then stops the nodes by PID. Data dirs live under $DIR (default /tmp/spirit-bench3), on disk.
# PREALLOCATE sets storage.preallocate (default: the daemon's).
#
#   tests/bench/cluster3.sh BUILD_DIR [spirit bench arguments...]
#   tests/bench/cluster3.sh build/release --producers 8 --in-flight 64 --count 2000000 \
#       --redundancy immediate
set -euo pipefail
build=${1:?usage: cluster3.sh BUILD_DIR [bench arguments]}
shift
dir=${DIR:-/tmp/spirit-bench3}
rm -rf "$dir"
mkdir -p "$dir"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
ids=(node-a node-b node-c)
client=(7791 7792 7793)
peer=(7891 7892 7893)
keys=()
for i in 0 1 2; do
    keys+=("$("$build/daemon/spirit" keygen --out "$dir/${ids[$i]}.key" 2>/dev/null)")
done
for i in 0 1 2; do
    {
        echo "[node]"
        echo "id = \"${ids[$i]}\""
        echo "data_dir = \"$dir/${ids[$i]}\""
        echo "key_file = \"$dir/${ids[$i]}.key\""
        echo "[client]"
        echo "listen = \"127.0.0.1:${client[$i]}\""
        echo "unix_socket = \"\""
        if [ -n "${PREALLOCATE:-}" ]; then
            echo "[storage]"
            echo "preallocate = \"$PREALLOCATE\""
        fi
        echo "[cluster]"
        echo "name = \"bench\""
        echo "listen = \"127.0.0.1:${peer[$i]}\""
        for j in 0 1 2; do
            echo "[[cluster.members]]"
            echo "id = \"${ids[$j]}\""
            echo "address = \"127.0.0.1:${peer[$j]}\""
            echo "public_key = \"${keys[$j]}\""
        done
    } > "$dir/${ids[$i]}.toml"
    "$build/daemon/spiritd" --config "$dir/${ids[$i]}.toml" 2> "$dir/${ids[$i]}.log" &
    pids+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 1 100); do
        "$build/daemon/spirit" --server "127.0.0.1:${client[$i]}" status > /dev/null 2>&1 && break
        sleep 0.05
    done
done
# node-a becomes master (refused until it caught up with the first elected
# one) and takes writes once it completed its streams (docs/topology.md).
for _ in $(seq 1 400); do
    if "$build/daemon/spirit" --server 127.0.0.1:7791 status 2>/dev/null | grep -q "^state *serving"; then
        break
    fi
    "$build/daemon/spirit" --server 127.0.0.1:7791 cluster set-master node-a > /dev/null 2>&1 || true
    sleep 0.05
done
"$build/daemon/spirit" --server 127.0.0.1:7791 bench "$@"
"$build/daemon/spirit" --server 127.0.0.1:7791 status | grep -E "peer|replication" || true
