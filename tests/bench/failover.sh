#!/usr/bin/env bash
# tests/bench/failover.sh: failover time, and immediate against eventual
# publish latency, on three spiritd nodes on loopback with the default
# election settings (heartbeat_ms 100, election_timeout_ms 1000). Keys and
# members as tests/bench/cluster3.sh makes them; streams named imm.* are
# immediate with acks = "majority", the others eventual. Data dirs live
# under $DIR (default /tmp/spirit-failover), on disk; the nodes listen for
# clients on 127.0.0.1:$PORT_BASE+1..3 (default 7781..7783) and for peers
# on $PORT_BASE+101..103. Every process started is stopped by PID at exit.
#
#   tests/bench/failover.sh BUILD_DIR [failover [ROUNDS]]          (default: failover 20)
#   tests/bench/failover.sh BUILD_DIR latency [ROUNDS [EVENTS]]    (default: latency 6 2000)
#
# failover: a publisher with one immediate publish in flight at a time
# (`spirit pub imm.failover --json`, fed a line per ack) runs through a node
# that is not the master. ROUNDS times: find the master, kill -9 it, and
# measure from the last ack of the old master's epoch to the first ack of a
# newer one (acks name their epoch; the times are the publisher's, taken as
# each ack is read); start the killed node again and wait until it says it
# is ready (caught up with the new master). Prints each round, then the
# median and the max. A publish that fails meanwhile (connection_lost,
# unavailable, not_master) is retried after 5 ms, so the measure is good to
# a few ms. Expect one to two election timeouts, plus an election and the
# new master's completion.
#
# latency: `spirit bench --in-flight 1` against the master, alternating an
# immediate stream and an eventual one ROUNDS times (EVENTS each), so that
# both see the same machine; prints each round's publish->ack p50 and p99,
# then the median of each over the rounds.
set -euo pipefail
build=${1:?usage: failover.sh BUILD_DIR [failover [ROUNDS] | latency [ROUNDS [EVENTS]]]}
mode=${2:-failover}
spirit="$build/daemon/spirit"
spiritd="$build/daemon/spiritd"
dir=${DIR:-/tmp/spirit-failover}
base=${PORT_BASE:-7780}
rm -rf "$dir"
mkdir -p "$dir"

ids=(node-a node-b node-c)
client=($((base + 1)) $((base + 2)) $((base + 3)))
peer=($((base + 101)) $((base + 102)) $((base + 103)))
pids=("" "" "")
publisher_pid=
cleanup() {
    if [ -n "$publisher_pid" ]; then kill "$publisher_pid" 2>/dev/null || true; fi
    if [ -s "$dir/pub.pid" ]; then kill "$(cat "$dir/pub.pid")" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "${pids[@]}" $publisher_pid; do
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
    done
}
trap cleanup EXIT

cli() {  # NODE_INDEX ARGS...
    local i=$1
    shift
    "$spirit" --server "127.0.0.1:${client[$i]}" --timeout-ms 2000 "$@"
}

start_node() {  # NODE_INDEX
    local i=$1
    "$spiritd" --config "$dir/${ids[$i]}.toml" 2>> "$dir/${ids[$i]}.log" &
    pids[i]=$!
    for _ in $(seq 1 200); do
        cli "$i" status > /dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "failover.sh: ${ids[$i]} did not start; see $dir/${ids[$i]}.log" >&2
    exit 1
}

status_json() {  # NODE_INDEX: one line of JSON, or nothing
    cli "$1" status --json 2> /dev/null || true
}

# The index of the node whose status says it serves as master; -1 if none.
master_index() {
    local i json
    for i in 0 1 2; do
        [ -n "${pids[$i]}" ] || continue
        json=$(status_json "$i")
        if [[ $json == *'"role":"master"'* && $json == *'"state":"serving'* ]]; then
            echo "$i"
            return
        fi
    done
    echo -1
}

wait_master() {
    local m
    for _ in $(seq 1 600); do
        m=$(master_index)
        if [ "$m" -ge 0 ]; then
            echo "$m"
            return
        fi
        sleep 0.05
    done
    echo "failover.sh: no master serving after 30 s" >&2
    exit 1
}

wait_ready() {  # NODE_INDEX
    for _ in $(seq 1 1200); do
        [[ $(status_json "$1") == *'"ready":true'* ]] && return 0
        sleep 0.05
    done
    echo "failover.sh: ${ids[$1]} not ready after 60 s: $(status_json "$1")" >&2
    exit 1
}

keys=()
for i in 0 1 2; do
    keys+=("$("$spirit" keygen --out "$dir/${ids[$i]}.key" 2> /dev/null)")
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
        echo "[cluster]"
        echo "name = \"failover\""
        echo "listen = \"127.0.0.1:${peer[$i]}\""
        for j in 0 1 2; do
            echo "[[cluster.members]]"
            echo "id = \"${ids[$j]}\""
            echo "address = \"127.0.0.1:${peer[$j]}\""
            echo "public_key = \"${keys[$j]}\""
        done
        echo "[[streams]]"
        echo "pattern = \"imm.>\""
        echo "redundancy = \"immediate\""
        echo "acks = \"majority\""
    } > "$dir/${ids[$i]}.toml"
done
for i in 0 1 2; do start_node "$i"; done
for i in 0 1 2; do wait_ready "$i"; done

# Publishes one event at a time through node $1 until $3 exists, writing
# "SECONDS JSON" per answer to $2 (SECONDS: bash's $EPOCHREALTIME).
publish_loop() {
    local node=$1 log=$2 stop=$3 n=0 line
    coproc PUB { exec "$spirit" --server "127.0.0.1:${client[$node]}" --timeout-ms 30000 \
        pub imm.failover --json 2> /dev/null; }
    echo "$PUB_PID" > "$dir/pub.pid"
    exec 4>> "$log"
    while [ ! -e "$stop" ]; do
        n=$((n + 1))
        echo "event $n" >&"${PUB[1]}"
        if ! read -r line <&"${PUB[0]}"; then
            echo "$EPOCHREALTIME exited" >&4
            break
        fi
        echo "$EPOCHREALTIME $line" >&4
        if [[ $line == *'"error"'* ]]; then sleep 0.005; fi
    done
    exec 4>&-
    kill "$PUB_PID" 2> /dev/null || true
    wait "$PUB_PID" 2> /dev/null || true
}

# From a publisher's log: the gap in ms between the last ack of epoch $2
# (or older) and the first of a newer one; nothing if there is none.
gap_ms() {
    awk -v old="$2" '
        /^[0-9.,]+ \{"kind":/ {
            e = $2; sub(/.*"epoch":/, "", e); sub(/[^0-9].*/, "", e); e += 0
            t = $1; sub(",", ".", t)
            if (e <= old) last = t
            else if (last != "" && first == "") first = t
        }
        END { if (first != "") printf "%.0f\n", (first - last) * 1000 }' "$1"
}

median_max() {  # values, one per line, on stdin: "median M max X"
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "no values"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median %s max %s (%d values)\n", m, v[NR], NR }'
}

run_failover() {
    local rounds=${1:-20} round m p json old took results=()
    echo "failover: $rounds rounds; kill -9 the master, time from its last ack to the next master's first"
    for round in $(seq 1 "$rounds"); do
        m=$(wait_master)
        json=$(status_json "$m")
        [[ $json =~ \"epoch\":([0-9]+) ]] && old=${BASH_REMATCH[1]}
        p=$(((m + 1) % 3))
        local log="$dir/round-$round.log" stop="$dir/round-$round.stop"
        publish_loop "$p" "$log" "$stop" &
        publisher_pid=$!
        # Acks of the old master first, then the kill.
        for _ in $(seq 1 200); do
            grep -q '"kind":' "$log" 2> /dev/null && break
            sleep 0.05
        done
        sleep 0.5
        kill -9 "${pids[$m]}"
        wait "${pids[$m]}" 2> /dev/null || true
        pids[m]=""
        took=
        for _ in $(seq 1 600); do
            took=$(gap_ms "$log" "$old")
            [ -n "$took" ] && break
            sleep 0.05
        done
        touch "$stop"
        wait "$publisher_pid" 2> /dev/null || true
        publisher_pid=
        local failed
        failed=$(grep -c '"error"' "$log" || true)
        if [ -z "$took" ]; then
            echo "round $round: killed ${ids[$m]} (epoch $old): no ack of a newer epoch within 30 s"
        else
            echo "round $round: killed ${ids[$m]} (epoch $old), publishing through ${ids[$p]}: $took ms ($failed publishes failed meanwhile)"
            results+=("$took")
        fi
        start_node "$m"
        wait_ready "$m"
    done
    echo "failover ms: $(printf '%s\n' "${results[@]}" | median_max)"
}

# "p50 1234 us" -> microseconds
to_us() {
    awk '{ v = $1; u = $2
           if (u == "ns") v = v / 1000; else if (u == "ms") v = v * 1000
           printf "%.0f\n", v }'
}

run_latency() {
    local rounds=${1:-6} events=${2:-2000} m round stream line p50 p99
    local imm50=() imm99=() ev50=() ev99=()
    m=$(wait_master)
    echo "latency: 1 in flight, $events events per round, against the master ${ids[$m]}, $rounds rounds of each"
    for round in $(seq 1 "$rounds"); do
        for stream in imm.latency ev.latency; do
            line=$("$spirit" --server "127.0.0.1:${client[$m]}" bench --stream "$stream" --keep \
                --in-flight 1 --count "$events" | grep '^publish->ack:')
            p50=$(sed -E 's/.*p50 ([0-9.]+ [mun]?s),.*/\1/' <<< "$line" | to_us)
            p99=$(sed -E 's/.*p99 ([0-9.]+ [mun]?s),.*/\1/' <<< "$line" | to_us)
            echo "round $round $stream: p50 $p50 us, p99 $p99 us"
            if [ "$stream" = imm.latency ]; then
                imm50+=("$p50")
                imm99+=("$p99")
            else
                ev50+=("$p50")
                ev99+=("$p99")
            fi
        done
    done
    echo "immediate p50 us: $(printf '%s\n' "${imm50[@]}" | median_max)"
    echo "immediate p99 us: $(printf '%s\n' "${imm99[@]}" | median_max)"
    echo "eventual  p50 us: $(printf '%s\n' "${ev50[@]}" | median_max)"
    echo "eventual  p99 us: $(printf '%s\n' "${ev99[@]}" | median_max)"
}

case "$mode" in
    failover) run_failover "${3:-20}" ;;
    latency) run_latency "${3:-6}" "${4:-2000}" ;;
    *)
        echo "failover.sh: mode must be failover or latency" >&2
        exit 2
        ;;
esac
