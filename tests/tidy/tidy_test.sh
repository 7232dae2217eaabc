#!/usr/bin/env bash
# Module boundaries and style, checked on the source text (TigerBeetle's
# tidy): each folder includes only what docs/architecture.md allows it.
#   topology/  std and core's plain types only: no IO, clock, threads, codec,
#              crypto, libuv or LMDB, no unordered containers or std random
#   storage/   no libuv, toml++ or topology
#   net/       no LMDB, toml++ or topology internals
#   core/      no libuv, LMDB, toml++ or other modules
#   <lmdb.h> only in storage/, <uv.h> only in net/ (and daemon's wiring)
# plus: no line over 100 columns, no topology function over 70 lines.
set -u
root="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$root" || exit 2
failures=0
fail() { echo "tidy: $*"; failures=$((failures + 1)); }

sources() { find "$@" -type f \( -name '*.h' -o -name '*.cc' \) 2>/dev/null | sort; }

# forbid DIR PATTERN WHY: no line of DIR's sources may match PATTERN (ERE).
forbid() {
    local dir="$1" pattern="$2" why="$3"
    local hits f
    # Comments may name what the code must not use.
    hits=$(for f in $(sources "$dir"); do
        sed 's|//.*||' "$f" | grep -nE "$pattern" | sed "s|^|$f:|"
    done)
    if [ -n "$hits" ]; then
        while IFS= read -r hit; do fail "$hit: $why"; done <<< "$hits"
    fi
}

forbid topology '#include *[<"](uv\.h|lmdb\.h|sodium|msgpack|thread|mutex|condition_variable|future|atomic|random|chrono|filesystem|fstream|iostream|toml)' \
    "topology/ is a pure state machine: no IO, clock, threads, codec or crypto"
forbid topology '#include *"(storage|net|daemon)/' "topology/ may use core/ only"
forbid topology '#include *"core/(codec|hash_chain|identity)' "topology/ uses core's plain types only"
forbid topology '(system_clock|steady_clock|random_device|_distribution|unordered_|std::cout|printf|getenv|rand\()' \
    "topology/ must be deterministic"
forbid storage '#include *[<"](uv\.h|toml)' "storage/ hides LMDB and knows no sockets or config"
forbid storage '#include *"(net|topology|daemon)/' "storage/ may use core/ only"
forbid net '#include *[<"](lmdb\.h|toml)' "net/ hides libuv and knows no LMDB or config"
forbid net '#include *"(storage|topology|daemon)/' "net/ may use core/ only"
forbid core '#include *[<"](uv\.h|lmdb\.h|toml)' "core/ uses std, msgpack-c and libsodium only"
forbid core '#include *"(storage|net|topology|daemon)/' "core/ depends on no other module"

for f in $(sources core net topology daemon tests); do
    case "$f" in storage/*) continue ;; esac
    if grep -qE '#include *<lmdb\.h>' "$f" && [[ "$f" != tests/* ]]; then
        fail "$f: includes <lmdb.h> outside storage/"
    fi
done
for f in $(sources core storage topology); do
    grep -qE '#include *<uv\.h>' "$f" && fail "$f: includes <uv.h> outside net/"
done

for f in $(sources core storage net topology daemon tests); do
    awk -v f="$f" 'length($0) > 100 { printf "tidy: %s:%d: line of %d columns (limit 100)\n", f, NR, length($0); bad = 1 }
                   END { exit bad }' "$f" || failures=$((failures + 1))
done

# Functions in topology/*.cc: from a line that starts a body at column 0
# ("...) {" or "... {" after a signature) to the matching "}" at column 0.
for f in $(find topology -name '*.cc' | sort); do
    awk -v f="$f" '
        /^[A-Za-z].*\{$/ && !/^(namespace|struct|class|enum)/ { start = NR; name = $0; next }
        /^\}/ && start { if (NR - start > 70) { printf "tidy: %s:%d: function of %d lines (limit 70): %s\n", f, start, NR - start, name; bad = 1 } start = 0 }
        END { exit bad }' "$f" || failures=$((failures + 1))
done

if [ "$failures" -gt 0 ]; then
    echo "tidy: $failures problem(s)"
    exit 1
fi
echo "tidy: ok"
