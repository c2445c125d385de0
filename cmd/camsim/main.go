// Command camsim runs simulated ONVIF cameras on loopback addresses.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"velo/onvif/camsim"
)

const usage = `camsim — simulated ONVIF cameras for Velo's tests and demo

Usage:
  camsim [--config FILE]     run the cameras until SIGINT/SIGTERM
  camsim --print-demo        print the embedded demo config and exit

Without --config, the embedded three-camera demo runs (see --print-demo).

Each camera serves, on its own 127.0.0.x address:
  http://ADDR:HTTP_PORT/onvif/device_service   ONVIF Device, Media, Media2, PTZ
  rtsp://ADDR:RTSP_PORT/main and /sub          H.264 scene (RTSP digest auth)
  http://ADDR:HTTP_PORT/snapshot/main.jpg      JPEG of the current view
  POST http://ADDR:HTTP_PORT/camsim/tamper?PARAMS
                                               tamper with the camera as a
                                               person on site would (below)
  GET  http://ADDR:HTTP_PORT/camsim/state      position, presets, limits and
                                               view tamper (JSON)
The control URLs need the camera's credentials (HTTP digest). Tamper
parameters (omitted ones stay as they are; an invalid one changes nothing):
  pan=P&tilt=T&zoom=Z   move the PTZ motor, ignoring ONVIF limits (PTZ only)
  dx=X&dy=Y             bump: move the picture right/down by fractions of
                        the frame (-1..1)
  rotate=DEG            turn the picture counter-clockwise (-180..180)
  zoom_factor=F         re-zoom: magnify about the centre (0.25..8, 1 none)
  flip=none|h|v|hv      mirror left-right and/or top-bottom
  cover=C               hide the left fraction C of the frame behind a dark
                        uniform object (0..1; 1 = covered lens)
  defocus=R             blur radius in pixels (0..50)
  reset                 clear the view tamper (before the others apply)
e.g. curl --digest -u USER:PASS -X POST 'http://ADDR:PORT/camsim/tamper?dx=0.1'
(with a shell, quote the URL: & separates parameters).
WS-Discovery: unicast probes to ADDR:3702 are answered; with
discovery.multicast: true the group 239.255.255.250:3702 too (only inside
a network namespace), with Hello on start and Bye on stop.

Config (YAML):
  discovery:
    multicast: false          join the WS-Discovery group, send Hello/Bye
    unicast: true             answer probes sent to each camera's address
    unicast_port: 3702
  cameras:
    - id: NAME                required, unique
      address: 127.0.0.X      required, unique per camera
      http_port: 8080         0 = any free port
      rtsp_port: 8554         0 = any free port
      no_video: false         true = no RTSP server, no encoder
      manufacturer, model, firmware, serial, hardware_id, hostname, endpoint
      username, password      required unless auth: none
      auth: either            wsse | digest | either | none
      digest_algorithms: [SHA-256, MD5]
      clock_skew: 1h          camera clock offset (Go duration, may be negative)
      clock_start: 1970-01-01T00:00:00Z   camera clock starts here (lost RTC)
      clock_window: 5s        accepted |WS-Security Created - camera clock|
      replay_protection: false  refuse a repeated WS-Security nonce (Axis)
      scene: street           ptz | badge | street
      source: ""              a video file streamed instead of the scene, looped
                              at fps and scaled to width x height (e.g. Debian's
                              opencv-doc vtest.avi); PTZ and tampering leave it
      fps: 15
      width: 1920             height: 1080
      traffic: false          true = cars on the street, walkers in front of
                              the wall (false: nothing in the scene moves)
      day_cycle: 0            0 = constant daylight; a period (e.g. 10m) = a
                              compressed day: daylight with sweeping shadows,
                              dusk, IR night (monochrome) with headlights, dawn
      ptz:                    omit for a fixed camera
        pan_tilt_speed: 0.5   generic units per second
        zoom_speed: 0.25
        max_presets: 300
        no_limits: false      true = the camera cannot limit pan/tilt/zoom
        home: {pan: 0, tilt: 0, zoom: 0}
        presets: [{token: "1", name: entrance, pan: 0, tilt: 0, zoom: 0}]
      masks:                  Media2 privacy masks
        disabled: false       true = no Media2 service
        max_masks: 8
        max_points: 16
        rectangle_only: false
      quirks:
        vendor_namespaces: false   unusual prefixes in replies
        chunked: false             Transfer-Encoding: chunked replies
        move_status_stuck: false   MoveStatus always IDLE
        wrong_xaddr_host: ""       report this host:port in XAddrs
        wrong_stream_host: ""      report this host:port in GetStreamUri
        no_get_services: false     GetServices → ActionNotSupported

The scene is a street front: brick and plaster, windows, a door, a sign,
lamp posts, a car park. Two regions carry a marker (an 8x8 checkerboard of
saturated colours) that nothing else has: the badge reader and the street.
`

func main() {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	cfgPath := fs.String("config", "", "YAML config file (default: embedded demo)")
	printDemo := fs.Bool("print-demo", false, "print the embedded demo config")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *printDemo {
		fmt.Print(camsim.DemoYAML())
		return
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Str("component", "camsim").Logger()
	var cfg camsim.Config
	var err error
	if *cfgPath != "" {
		cfg, err = camsim.LoadConfig(*cfgPath)
	} else {
		cfg, err = camsim.DemoConfig()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sim, err := camsim.New(cfg, camsim.Options{Logf: func(f string, a ...any) { log.Warn().Msgf(f, a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sim.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, c := range sim.Cameras() {
		cc := c.Config()
		ev := log.Info().Str("camera", cc.ID).Str("xaddr", c.XAddr()).Str("auth", string(cc.Auth))
		if !cc.NoVideo {
			ev = ev.Str("rtsp", fmt.Sprintf("rtsp://%s:%d/main", cc.Address, cc.RTSPPort))
		}
		ev.Msg("camera up")
	}
	<-ctx.Done()
	log.Info().Msg("stopping")
	sim.Close()
}
