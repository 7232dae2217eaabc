# Sourced by ./run, ./test and .ci/run: installs the Debian packages spirit
# needs, and only those that are missing, so a second run is fast.
#
# build:   cmake ninja-build g++ pkg-config
# libs:    libuv1-dev libsodium-dev liblmdb-dev libmsgpack-cxx-dev
#          libtomlplusplus-dev libexpected-dev libfmt-dev libspdlog-dev
#          libcli11-dev libsystemd-dev
#          prometheus-cpp-dev (metric types, text exposition) libcivetweb-dev (HTTP)
# tests:   catch2 python3-msgpack python3-nacl lmdb-utils fiu-utils (I/O error injection)
#          strace (counts the sync syscalls of each sync mode)
#          prometheus (promtool checks the scrapes and alert rules)
#          dpkg-dev (dpkg-shlibdeps for cpack -G DEB) systemd (systemd-analyze verify)
spirit_packages=(
    cmake ninja-build g++ pkg-config
    libuv1-dev libsodium-dev liblmdb-dev libmsgpack-cxx-dev
    libtomlplusplus-dev libexpected-dev libfmt-dev libspdlog-dev libcli11-dev libsystemd-dev
    prometheus-cpp-dev libcivetweb-dev
    catch2 python3-msgpack python3-nacl lmdb-utils fiu-utils strace
    prometheus dpkg-dev systemd
)

spirit_install_packages() {
    local missing=() p
    for p in "${spirit_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing missing packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}
