#!/usr/bin/env bash
# The demo behind `make run`: three simulated cameras (embedded camsim
# config), found by unicast WS-Discovery on loopback and probed one by one.
# Loopback only: multicast is never sent outside a test namespace.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
# Git does not keep file modes; velo refuses password files others can read.
chmod 600 deploy/demo/*.password deploy/demo/*.cred
log=$(mktemp -t camsim.XXXXXX.log)
"$BIN/camsim" >"$log" 2>&1 &
sim=$!
cleanup() { kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT INT TERM

# Wait for the three device services to answer (at most 10 s).
for _ in $(seq 100); do
  if ! kill -0 "$sim" 2>/dev/null; then echo "camsim failed:"; cat "$log"; exit 1; fi
  n=$(grep -c 'camera up' "$log" || true)
  [ "$n" -ge 3 ] && break
  sleep 0.1
done

echo "== velo discover (unicast probes to 127.0.0.8/28) =="
"$BIN/velo" discover --no-multicast --unicast 127.0.0.8/28 --window 2s
echo
for cam in ptz-entrance:11 badge-corridor:12 street-gate:13; do
  id=${cam%%:*}; ip=127.0.0.${cam##*:}
  echo "== velo probe $id =="
  "$BIN/velo" probe --xaddr "http://$ip:8080/onvif/device_service" --user velo --password-file "deploy/demo/$id.password"
  echo
done
cat <<'MSG'
== velo run --config deploy/demo/site.yaml ==
The agent checks each camera's serial, locks the PTZ camera to its approved
preset (and sets its PTZ limits), verifies every frame against its view's
reference picture, masks the badge reader and the street before encoding,
serves the masked streams, and publishes telemetry on its embedded MQTT
broker (127.0.0.1:11883). Lines starting with "velo/demo/"
below are that telemetry (mosquitto_sub, logged in as the operator
"admin" with their stream password: the embedded broker refuses anonymous
clients); the rest is the agent's log.

Watch a masked stream (operator "ops", with the RTSP stream password
derived from demo-ops-pass; it is not printed here, the first command puts
it in a shell variable):
  stream=$(bin/velo passwd --config deploy/demo/site.yaml --operator ops \
      --password-file deploy/demo/ops.password --stream-password)
  ffplay -rtsp_transport tcp "rtsp://ops:$stream@127.0.0.1:8654/ptz-entrance"
Tamper with the PTZ camera as its web page would: events drift (output
blanked at once) → snap_back (output restored once the position is confirmed):
  curl --digest -u "velo:$(cat deploy/demo/ptz-entrance.password)" -X POST 'http://127.0.0.11:8080/camsim/tamper?pan=0.5'
Bump the fixed badge camera by 5 % of its width (as a knock would): every
frame is checked against the view's reference, so the output goes blank at
once (view_mismatch) and returns once the picture matches (view_restored):
  curl --digest -u "velo:$(cat deploy/demo/badge-corridor.password)" -X POST 'http://127.0.0.12:8080/camsim/tamper?dx=0.05'
  curl --digest -u "velo:$(cat deploy/demo/badge-corridor.password)" -X POST 'http://127.0.0.12:8080/camsim/tamper?reset=1'
Apply the other approved preset as the maintainer (a signed MQTT command):
  bin/velo command --config deploy/demo/site.yaml --operator maint \
      --password-file deploy/demo/maint.password preset/apply camera=ptz-entrance preset=2
An unapproved preset (3) or a viewer's command is refused and reported.
Installer console (draw masks on the live picture, commission views;
self-signed certificate: accept it once in the browser):
  https://127.0.0.1:8443/
  installer login: inst / demo-inst-pass   (proposes views)
  admin login:     admin / demo-admin-pass (approves them, ER-4.7)
Reload the config after an edit: kill -HUP the velo process, or
  bin/velo command --config deploy/demo/site.yaml --operator admin \
      --password-file deploy/demo/admin.password config/reload
Ctrl-C stops everything.

MSG
"$BIN/velo" run --config deploy/demo/site.yaml &
velo=$!
trap 'kill "$velo" 2>/dev/null || true; wait "$velo" 2>/dev/null || true; kill "$sub" 2>/dev/null || true; cleanup' EXIT INT TERM
sub=
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/11883) 2>/dev/null; then break; fi
  kill -0 "$velo" 2>/dev/null || exit 1
  sleep 0.1
done
if command -v mosquitto_sub >/dev/null; then
  # The login goes in mosquitto_sub's options file, not its argv.
  subconf=$(mktemp -d -t velo-demo-sub.XXXXXX)
  trap 'kill "$velo" 2>/dev/null || true; wait "$velo" 2>/dev/null || true; kill "$sub" 2>/dev/null || true; rm -rf "$subconf"; cleanup' EXIT INT TERM
  adminstream=$("$BIN/velo" passwd --config deploy/demo/site.yaml --operator admin --password-file deploy/demo/admin.password --stream-password)
  (umask 077; printf -- '-u admin\n-P %s\n' "$adminstream" >"$subconf/mosquitto_sub")
  root=velo/demo/demo-gw-1
  XDG_CONFIG_HOME=$subconf mosquitto_sub -h 127.0.0.1 -p 11883 -v \
    -t "$root/status" -t "$root/cameras/+/state" -t "$root/events" -t "$root/cmd/+/+/reply" -t "$root/cmd/+/reply" &
  sub=$!
fi
wait "$velo"
