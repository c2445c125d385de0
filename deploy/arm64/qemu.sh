#!/usr/bin/env bash
# Runs an arm64 binary under qemu-aarch64 with the sysroot's libraries:
#   deploy/arm64/qemu.sh build/arm64/velo version
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sr=$root/build/arm64/sysroot
l=$sr/usr/lib/aarch64-linux-gnu
QEMU_LD_PREFIX=$sr LD_LIBRARY_PATH=$l:$l/blas:$l/lapack:$sr/lib/aarch64-linux-gnu:$sr/usr/lib exec qemu-aarch64 "$@"
