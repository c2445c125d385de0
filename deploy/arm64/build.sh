#!/usr/bin/env bash
# Cross-builds velo for arm64 (cgo: gocv against the arm64 OpenCV 4.6 in
# build/arm64/sysroot) into build/arm64/velo, a stripped PIE as the .deb
# wants it. Needs gcc-aarch64-linux-gnu,
# g++-aarch64-linux-gnu (deploy/deps.sh installs them with qemu-user).
# Run it under emulation with deploy/arm64/qemu.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  pk="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user"
  if [ "$(id -u)" -ne 0 ]; then echo "arm64: run as root: apt-get install -y $pk" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pk >/dev/null
fi
sr=$(bash deploy/arm64/sysroot.sh)
l=$sr/usr/lib/aarch64-linux-gnu
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
PKG_CONFIG_SYSROOT_DIR=$sr PKG_CONFIG_LIBDIR=$l/pkgconfig CGO_ENABLED=1 GOOS=linux GOARCH=arm64 \
CC="aarch64-linux-gnu-gcc --sysroot=$sr" CXX="aarch64-linux-gnu-g++ --sysroot=$sr" \
CGO_LDFLAGS="-Wl,-rpath-link,$l -Wl,-rpath-link,$l/blas -Wl,-rpath-link,$l/lapack -Wl,-rpath-link,$sr/lib/aarch64-linux-gnu -Wl,-rpath-link,$sr/usr/lib" \
  go build -buildmode=pie -ldflags "-s -w -X main.version=$version" -o build/arm64/velo ./cmd/velo
echo build/arm64/velo
