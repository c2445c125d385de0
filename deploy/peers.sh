#!/usr/bin/env bash
# Installs the independent npm ONVIF client (onvif@0.8.3, exact version)
# into build/npm for the interoperability tests. Idempotent.
set -euo pipefail
dir=build/npm
if [ -f "$dir/node_modules/onvif/package.json" ] && grep -q '"version": "0.8.3"' "$dir/node_modules/onvif/package.json"; then
  exit 0
fi
mkdir -p "$dir"
cp onvif/testdata/peers/package.json "$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
echo "peers: installed onvif@0.8.3 in $dir" >&2
