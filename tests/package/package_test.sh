#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` in a build dir makes it; it is
# unpacked into a scratch root (dpkg-deb -x), where its files, conffiles,
# maintainer scripts and dependencies are checked, the packaged spiritd
# accepts the packaged configuration, and `systemd-analyze verify --root`
# accepts the unit with no message at all (a warning fails the test too).
#
# systemd-analyze verify runs here without systemd as PID 1: it loads the
# unit into a private manager. With --root it resolves everything inside
# the scratch root, so the root gets a copy of the host's own units
# (sysinit.target, network.target, ...) beside the package's, and the
# unit's ExecStart is checked against the packaged binary.
#
#   package_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "package_test: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$work"/out/spirit_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no spirit_*.deb in $work/out"
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"

info=$(dpkg-deb --info "$deb")
for dep in libuv1 libsodium23 liblmdb0 libprometheus-cpp-core1.0 libcivetweb1 libsystemd0; do
    grep -q "Depends:.*$dep" <<< "$info" || fail "Depends lacks $dep: $info"
done

root="$work/root"
dpkg-deb -x "$deb" "$root"
for f in usr/bin/spiritd usr/bin/spirit usr/lib/systemd/system/spiritd.service \
         usr/lib/sysusers.d/spirit.conf usr/lib/tmpfiles.d/spirit.conf etc/spirit/spirit.toml \
         usr/share/spirit/grafana-dashboard.json usr/share/spirit/prometheus-alerts.yml; do
    [ -e "$root/$f" ] || fail "the package has no /$f"
done
[ -x "$root/usr/bin/spiritd" ] || fail "/usr/bin/spiritd is not executable"

control="$work/control"
dpkg-deb -e "$deb" "$control"
grep -qx /etc/spirit/spirit.toml "$control/conffiles" || fail "spirit.toml is not a conffile"
for script in postinst prerm postrm; do
    [ -x "$control/$script" ] || fail "$script is missing or not executable"
    sh -n "$control/$script" || fail "$script does not parse"
done

"$root/usr/bin/spiritd" --version | grep -q '^spiritd ' || fail "spiritd --version"
"$root/usr/bin/spiritd" --config "$root/etc/spirit/spirit.toml" --check-config > /dev/null ||
    fail "the packaged spiritd refuses the packaged configuration"

command -v systemd-analyze > /dev/null || fail "systemd-analyze is not installed (package systemd)"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
verify=$(systemd-analyze verify --root="$root" spiritd.service 2>&1) ||
    fail "systemd-analyze verify refused the unit: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complained: $verify"
echo "systemd-analyze verify: spiritd.service ok"
echo "package_test: ok"
