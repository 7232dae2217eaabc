#!/usr/bin/env bash
# Starts one spiritd (sync = "always", data on disk under $DIR, default
# /tmp/spirit-bench1), runs `spirit bench` against it with the arguments
# given, then stops the daemon by PID. PREALLOCATE sets storage.preallocate
# (default: the daemon's).
#
#   tests/bench/single.sh BUILD_DIR [spirit bench arguments...]
#   tests/bench/single.sh build/release --producers 8 --in-flight 64 --count 2000000
set -euo pipefail
build=${1:?usage: single.sh BUILD_DIR [bench arguments]}
shift
dir=${DIR:-/tmp/spirit-bench1}
rm -rf "$dir"
mkdir -p "$dir"
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
cat > "$dir/spirit.toml" <<CONF
[node]
id = "bench"
data_dir = "$dir/data"
[client]
listen = "127.0.0.1:7790"
unix_socket = ""
[storage]
sync = "always"
CONF
if [ -n "${PREALLOCATE:-}" ]; then
    echo "preallocate = \"$PREALLOCATE\"" >> "$dir/spirit.toml"
fi
"$build/daemon/spiritd" --config "$dir/spirit.toml" 2> "$dir/spiritd.log" &
pid=$!
for _ in $(seq 1 100); do
    "$build/daemon/spirit" --server 127.0.0.1:7790 status > /dev/null 2>&1 && break
    sleep 0.05
done
"$build/daemon/spirit" --server 127.0.0.1:7790 bench "$@"
if [ -n "${SHOW_CPU:-}" ]; then
    echo "spiritd cpu: $(ps -o times= -p "$pid") s"
    "$build/daemon/spirit" --server 127.0.0.1:7790 status | grep -iE "commit|sync" || true
fi
