#!/usr/bin/env bash
# Builds build/deb/velo_<version>_<arch>.deb from a velo binary.
#   deploy/deb/build.sh ARCH BINARY [SYSROOT]
# Depends are computed from the binary's shared libraries: each NEEDED
# library is resolved to the Debian package that ships it (dpkg -S on the
# host for amd64, or in SYSROOT's dpkg database for a cross build), plus the
# GStreamer plugins and ffmpeg that velo loads or runs at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:?usage: build.sh ARCH BINARY [SYSROOT]}
bin=${2:?usage: build.sh ARCH BINARY [SYSROOT]}
sysroot=${3:-}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo unknown)}
version=${version#v}
# A tag like v1.2.0 gives 1.2.0; without tags, 0.0~git<hash>[+dirty].
[[ "$version" =~ ^[0-9]+\.[0-9] ]] || version="0.0~git${version}"
version=${version//-/+}
out=build/deb
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$bin" "$stage/usr/bin/velo"
install -D -m 0644 deploy/systemd/velo.service "$stage/lib/systemd/system/velo.service"
install -D -m 0640 deploy/deb/site.yaml "$stage/etc/velo/site.yaml"
install -d -m 0755 "$stage/usr/share/doc/velo/mosquitto"
install -m 0644 README.md docs/config.md docs/mqtt.md "$stage/usr/share/doc/velo/"
install -m 0644 deploy/mosquitto/velo.conf deploy/mosquitto/acl deploy/mosquitto/README.md "$stage/usr/share/doc/velo/mosquitto/"
install -m 0755 deploy/mosquitto/issue-cert.sh "$stage/usr/share/doc/velo/mosquitto/"

# Shared-library dependencies.
declare -A pkgs=()
for lib in $(objdump -p "$bin" | awk '/NEEDED/ {print $2}'); do
  if [ -n "$sysroot" ]; then
    p=$(grep -l "/$lib\$" "$sysroot"/var/lib/dpkg/info/*.list 2>/dev/null | head -1 | xargs -r basename | sed 's/\.list$//; s/:.*//')
  else
    p=$(dpkg -S "*/$lib" 2>/dev/null | grep -v -- '-dev' | head -1 | cut -d: -f1)
  fi
  [ -n "$p" ] || { echo "build.sh: no package ships $lib" >&2; exit 1; }
  pkgs[$p]=1
done
deps=$(printf '%s\n' "${!pkgs[@]}" | sort | paste -sd, | sed 's/,/, /g')
# Run-time plugins and tools: capture (rtspsrc, avdec_h264), encode
# (x264enc, rawvideoparse, h264parse), recorder (ffmpeg).
deps="$deps, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-ugly, gstreamer1.0-plugins-bad, gstreamer1.0-libav, ffmpeg, adduser"

install -d "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: velo
Version: $version
Architecture: $arch
Maintainer: Velo <velo@example.invalid>
Section: video
Priority: optional
Depends: $deps
Description: ONVIF privacy agent for camera gateways
 Discovers ONVIF cameras, locks PTZ to approved presets, masks
 non-pertinent regions before encoding (fail closed), and reports to MQTT.
CONTROL
echo /etc/velo/site.yaml > "$stage/DEBIAN/conffiles"
install -m 0755 deploy/deb/postinst deploy/deb/postrm "$stage/DEBIAN/"
mkdir -p "$out"
deb="$out/velo_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
