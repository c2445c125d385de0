#!/usr/bin/env bash
# Installs the Debian packages Velo needs to build, test and run the demo,
# and only those that are missing. Used by `make run` and `make test`.
# As root it runs apt-get update + install; otherwise it prints the command
# to run and exits 1.
set -euo pipefail

# command → Debian package providing it
declare -A CMDS=(
  [ffmpeg]=ffmpeg            # encoder of the simulator's RTSP scene, independent decoder in tests
  [onvif-util]=onvif-tools   # independent ONVIF client (libonvif)
  [ip]=iproute2              # network namespaces for discovery tests
  [unshare]=util-linux
  [node]=nodejs              # independent ONVIF client (npm onvif@0.8.3)
  [npm]=npm
  [curl]=curl
)
missing=()
for c in "${!CMDS[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("${CMDS[$c]}")
done
# CA certificates for npm's registry.
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not on PATH (Velo needs Go 1.26; /usr/local/go/bin?)" >&2
  exit 1
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# nodejs from nodesource already ships npm: never ask apt for both.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^$' | sort -u)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
