#!/usr/bin/env bash
# Assembles an arm64 sysroot with OpenCV 4.6 and GStreamer's app and
# video libraries (libopencv-dev, libgstreamer1.0-dev,
# libgstreamer-plugins-base1.0-dev and their dependency closure) from
# Debian's arm64 packages, into build/arm64/sysroot,
# without touching the host's dpkg: a private apt state (APT::Architectures
# arm64, own lists and cache) and `dpkg -x` per package. Never installs an
# arm64 -dev package on the host: libopencv-dev:arm64 would replace the
# host's own libopencv-dev, which the amd64 build and tests need.
# Idempotent: a finished sysroot made from the same root packages is
# reused (.complete records them; a new root rebuilds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD/build/arm64
sr=$top/sysroot
roots="libopencv-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libc6-dev libstdc++-12-dev"
[ -f "$sr/.complete" ] && [ "$(cat "$sr/.complete")" = "$roots" ] && { echo "$sr"; exit 0; }
# (about 470 packages, 250 MB, a minute or two the first time)
apt=$top/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$top/debs"
opts=(-o APT::Architectures=arm64 -o APT::Architecture=arm64 -o Dir::State::Lists="$apt/lists"
      -o Dir::Cache="$apt/cache" -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${opts[@]}" -qq update
pkgs=$(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances $roots \
  | grep -E '^[a-z0-9]' | grep -v ':' | sort -u)
# Virtual packages have no .deb: keep the names apt-cache can show, then
# fetch them all in one apt-get call (pipelined, a minute or two instead of
# several minutes of single downloads).
real=$(apt-cache "${opts[@]}" show --no-all-versions $pkgs 2>/dev/null | awk '/^Package:/{print $2}' | sort -u)
cd "$top/debs"
want=()
for p in $real; do
  ls "${p}"_*.deb >/dev/null 2>&1 || want+=("$p")
done
[ ${#want[@]} -eq 0 ] || apt-get "${opts[@]}" -qq download "${want[@]}"
cd - >/dev/null
rm -rf "$sr"; mkdir -p "$sr"
mkdir -p "$sr/var/lib/dpkg/info"
for d in "$top"/debs/*.deb; do
  dpkg -x "$d" "$sr"
  # A file list per package, as dpkg keeps them, so deploy/deb/build.sh
  # can map the binary's libraries to arm64 packages.
  pkg=$(dpkg-deb -f "$d" Package)
  dpkg-deb -c "$d" | awk '{print $6}' | sed 's#^\./#/#; s#/$##' | grep -v '^$' > "$sr/var/lib/dpkg/info/$pkg.list"
done
# Absolute symlinks inside the sysroot point at the host's files: repoint
# them into the sysroot.
find "$sr" -type l | while read -r l; do
  t=$(readlink "$l")
  case "$t" in /*) ln -sfn "$sr$t" "$l";; esac
done
n=$(ls "$top"/debs/*.deb | wc -l)
echo "sysroot: $n packages" >&2
echo "$roots" > "$sr/.complete"
echo "$sr"
