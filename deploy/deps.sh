#!/usr/bin/env bash
# Installs the Debian packages Velo needs to build, test and run the demo,
# and only those that are missing. Used by `make run` and `make test`.
# As root it runs apt-get update + install; otherwise it prints the command
# to run and exits 1.
set -euo pipefail

# Debian packages (build and test).
PKGS=(
  ffmpeg                 # encoder of the simulator's scene; independent decoder in tests
  onvif-tools            # independent ONVIF client (libonvif's onvif-util)
  iproute2 util-linux    # network namespaces for discovery tests
  curl ca-certificates   # npm registry
  pkg-config libopencv-dev   # OpenCV 4.6 for gocv v0.32.0 (masking/)
  mosquitto mosquitto-clients openssl   # a real broker per test; mosquitto_sub in make run
  binutils systemd       # objdump for .deb Depends; systemd-analyze verify of the unit
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav
  gstreamer1.0-rtsp      # rtspclientsink: the encoder publishes to Velo's RTSP server
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev   # masking/gstapp: cgo over appsink/appsrc (gstreamer-app-1.0, gstreamer-video-1.0)
  poppler-utils          # pdftotext/pdftoppm: dossier and sign tests; velo sign --out x.png
  lintian                # Debian policy check of the .deb (deploy tests)
  groff-base             # groff -man -ww: the generated man page is checked (cmd/velo tests)
  fonts-dejavu-core      # DejaVu Sans, embedded in the dossier and sign PDFs (agent/dossier)
  prometheus             # promtool test rules and a real Prometheus scraping velo fleet (fleet tests)
  opencv-data            # Haar cascades for dynamic anonymisation (masking/anonymise); never downloaded at run time
  opencv-doc             # vtest.avi and Megamind.avi: the labelled footage of the anonymisation tests
  chromium               # headless browser driving the installer console's tests (agent/console)
)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js with npm: nodesource's nodejs ships npm; Debian splits them.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is not on PATH (Velo needs Go 1.26; /usr/local/go/bin?)" >&2
  exit 1
fi
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
