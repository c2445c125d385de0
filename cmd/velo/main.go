// Command velo is the Velo gateway agent's CLI: the agent (run), config
// checks, signed MQTT commands, discovery and probing of ONVIF cameras,
// mask previews and self-tests, the audit log, recordings, the site
// dossier and the information signs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `velo — ONVIF privacy agent for camera gateways

Usage:
  velo run [--config /etc/velo/site.yaml] [--debug]
      Run the agent: per camera, check its identity, lock PTZ to the approved
      preset, mask before encoding and serve masked RTSP to operators; publish
      status, camera state and events over MQTT (an embedded broker on
      loopback when the config names none) and take signed commands.
      SIGHUP reloads the config (an invalid one is refused, the old kept).
  velo command --config SITE.yaml --operator NAME --password-file F VERB [k=v …]
      Sign a command (preset/apply camera=ID preset=TOKEN, config/reload,
      state/refresh), send it over MQTT and print the gateway's reply.
  velo config check FILE
      Validate a site config; errors name file, line, field and reason.
  velo discover [--iface NAME …] [--unicast HOST|CIDR …] [--no-multicast]
                [--window 3s] [--user U --password-file F --allow CIDR …] [--json]
      Find ONVIF cameras with WS-Discovery and print address, manufacturer,
      model, firmware, serial and whether they need credentials.
  velo probe --xaddr URL [--user U --password-file F] [--timeout 10s] [--json]
      Read one camera: identity, services, profiles, stream URIs (credentials
      stripped), PTZ spaces, presets and status, Media2 mask options and masks.
  velo mask preview --config SITE.yaml --operator NAME --password-file F --camera ID
                    [--preset TOKEN] --out FILE.jpg
  velo mask preview --stream RTSP_URL [--user U --password-file F] --masks FILE
                    [--preset TOKEN] [--backend auto|gstreamer|ffmpeg] --out FILE.jpg
      Grab one frame, apply the mask set of the preset, write the masked JPEG.
      Nothing is written when the frame cannot be masked. With --config the
      operator (installer, admin) is checked and the preview audited.
  velo mask selftest [--config SITE.yaml] [--width 640 --height 360] [--json]
      Mask a generated frame (built-in masks, and every mask set of the
      config), check every pixel, round-trip it through OpenCV's conversion
      and codecs, and check that unmaskable frames are refused. No camera
      needed; exits 1 if any check fails (run it on a new gateway).
  velo audit verify [--config SITE.yaml | --dir DIR] [--from T] [--to T]
                    [--anchors EVENTS.jsonl] [--json]
      Check the audit log's hash chain; with --anchors (audit_head events
      received over MQTT) also detect truncation and rewriting. Prints OK or
      the first broken link and the time taken; exits 1 when broken.
  velo audit show [--config SITE.yaml | --dir DIR] [--operator NAME]
                  [--camera ID] [--action A] [--from T] [--to T] [--json]
      Print audit entries (commands, live views, recording accesses,
      exports, holds, retention deletions, drift, reloads…).
  velo recording list|view|export|hold|release --config SITE.yaml
                 --operator NAME --password-file F [--camera ID] [--segment NAME]
                 [--reason R --ref REF] [--out FILE]
      Recorded segments (masked, encrypted at rest): list them; view one
      (a reason from ER-4.4 and its reference); export one (judicial
      reference, JSON sidecar with SHA-256); put or release a legal hold.
      Role-checked; every use, and every refusal, is audited.
  velo dossier --config SITE.yaml --operator NAME --password-file F --out FILE
               [--format pdf|html|json] [--no-move] [--allow-gaps]
      Write the site dossier for the authorisation request: per camera its
      purpose, identity and firmware, location, approved views with their
      approvals, a masked snapshot of each view, masks, retention, schedule,
      recording, who may do what; the controller, purposes, audit summary.
      Moves PTZ cameras through their approved presets (stop velo run first,
      or --no-move). Roles: installer, admin. Audited.
  velo sign --config SITE.yaml --camera ID --out sign.pdf|sign.png [--size A4|A3]
      Write the camera's information sign (Italian and English): controller,
      purpose, recorded or not and for how long, police link, contacts.
  velo passwd --config SITE.yaml --operator NAME [--password-file F] [--out FILE]
              [--stream-password]
      Write an operator's credential file (a slow hash of the password, for
      operators[].password_file) and print their RTSP stream password.
  velo version
      Print the version.

Run 'velo COMMAND --help' for a command's flags. JSON output is documented in
docs/cli-json.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "discover":
		err = cmdDiscover(ctx, args[1:], stdout, stderr)
	case "probe":
		err = cmdProbe(ctx, args[1:], stdout, stderr)
	case "mask":
		err = cmdMask(ctx, args[1:], stdout, stderr)
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "command":
		err = cmdCommand(ctx, args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(ctx, args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(args[1:], stdout, stderr)
	case "recording":
		err = cmdRecording(args[1:], stdout, stderr)
	case "dossier":
		err = cmdDossier(ctx, args[1:], stdout, stderr)
	case "sign":
		err = cmdSign(args[1:], stdout, stderr)
	case "passwd":
		err = cmdPasswd(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "velo", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "velo: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "velo:", err)
			return 2
		}
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "velo:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

var errHelp = errors.New("help shown")
