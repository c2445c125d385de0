package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/camera"
	"velo/masking"
	"velo/onvif"
)

// probeReport is `velo probe --json`; documented in docs/cli-json.md.
type probeReport struct {
	XAddr         string           `json:"xaddr"`
	Info          onvif.DeviceInfo `json:"info"`
	Hostname      string           `json:"hostname,omitempty"`
	ClockOffsetMS int64            `json:"clock_offset_ms"`
	Services      []onvif.Service  `json:"services"`
	Media2        bool             `json:"media2"`
	Profiles      []probeProfile   `json:"profiles"`
	PTZ           *probePTZ        `json:"ptz,omitempty"`
	Masks         *probeMasks      `json:"masks,omitempty"`
	Warnings      []string         `json:"warnings,omitempty"`
}

type probeProfile struct {
	Token       string `json:"token"`
	Name        string `json:"name"`
	Encoding    string `json:"encoding,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	FPS         int    `json:"fps,omitempty"`
	StreamURI   string `json:"stream_uri,omitempty"`
	SnapshotURI string `json:"snapshot_uri,omitempty"`
	PTZConfig   string `json:"ptz_configuration,omitempty"`
	VideoSource string `json:"video_source_configuration,omitempty"`
	// Codec is what the camera streams (Media2 where it has it, else the
	// Media profile), CodecFrom where that came from, and Decoder the
	// element velo would decode it with on this machine.
	Codec     string `json:"codec,omitempty"`
	CodecFrom string `json:"codec_from,omitempty"`
	Decoder   string `json:"decoder,omitempty"`
}

type probePTZ struct {
	Profile       string           `json:"profile"`
	Configuration string           `json:"configuration"`
	Nodes         []onvif.PTZNode  `json:"nodes"`
	Spaces        onvif.PTZSpaces  `json:"spaces"`
	PanTiltLimits *onvif.Limits    `json:"pan_tilt_limits,omitempty"`
	ZoomLimits    *onvif.Limits    `json:"zoom_limits,omitempty"`
	Presets       []onvif.Preset   `json:"presets"`
	Status        *onvif.PTZStatus `json:"status,omitempty"`
}

type probeMasks struct {
	Configuration string            `json:"configuration"`
	Options       onvif.MaskOptions `json:"options"`
	Masks         []onvif.Mask      `json:"masks"`
}

type probeOptions struct {
	xaddr, user, pwFile string
	timeout             time.Duration
	json                bool
}

func probeCommand(s streams) *ffcli.Command {
	fs := newFlagSet("probe")
	o := &probeOptions{}
	fs.StringVar(&o.xaddr, "xaddr", "", "device service `URL`, e.g. http://192.0.2.10/onvif/device_service (required)")
	fs.StringVar(&o.user, "user", "", "ONVIF user `NAME`")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` whose first line is the password")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-call timeout")
	fs.BoolVar(&o.json, "json", false, "print JSON (see docs/cli-json.md)")
	return &ffcli.Command{
		Name:       "probe",
		ShortUsage: synopsis("velo probe", fs, ""),
		ShortHelp:  "read one camera's identity, media, PTZ and masks",
		LongHelp: `Read one camera: identity, services, profiles, stream URIs (credentials
stripped), PTZ spaces, presets and status, Media2 mask options and
masks. Operations the camera lacks become warnings.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *probeOptions) run(ctx context.Context, s streams) error {
	if o.xaddr == "" {
		return usageError{msg: "probe: --xaddr is required"}
	}
	cfg := onvif.Config{XAddr: o.xaddr, Username: o.user, Timeout: o.timeout}
	if o.user != "" {
		if o.pwFile == "" {
			return usageError{msg: "probe: --user needs --password-file"}
		}
		pw, err := readPassword(o.pwFile)
		if err != nil {
			return err
		}
		cfg.Password = pw
	}
	c, err := onvif.NewClient(cfg)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	defer c.CloseIdleConnections()
	rep, err := probe(ctx, c)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonClean(rep))
	}
	printProbe(s.stdout, rep)
	return nil
}

// probe reads everything it can; operations a camera lacks become warnings.
func probe(ctx context.Context, c *onvif.Client) (*probeReport, error) {
	rep := &probeReport{XAddr: c.XAddr()}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	if off, ok := c.ClockOffset(); ok {
		rep.ClockOffsetMS = off.Milliseconds()
	}
	info, err := c.GetDeviceInformation(ctx)
	if err != nil {
		return nil, err
	}
	rep.Info = info
	if h, err := c.GetHostname(ctx); err == nil {
		rep.Hostname = h
	} else {
		rep.warn(err)
	}
	if svcs, err := c.GetServices(ctx); err == nil {
		rep.Services = svcs
	} else {
		rep.warn(err)
	}
	rep.Media2 = c.HasService(onvif.NSMedia2)
	profiles, err := c.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}
	tokens := rep.readProfiles(ctx, c, profiles)
	if tokens.ptzProfile != "" && c.HasService(onvif.NSPTZ) {
		rep.PTZ = rep.readPTZ(ctx, c, tokens.ptzProfile, tokens.ptzConfig)
	}
	if rep.Media2 && tokens.videoSource != "" {
		rep.Masks = rep.readMasks(ctx, c, tokens.videoSource)
	}
	return rep, nil
}

func (rep *probeReport) warn(err error) {
	rep.Warnings = append(rep.Warnings, err.Error())
}

// probeTokens are the first PTZ profile and configuration and the first
// video source configuration of a camera's profiles.
type probeTokens struct {
	ptzProfile, ptzConfig, videoSource string
}

// readProfiles fills the report's profiles, with their stream and
// snapshot URIs (credentials stripped).
func (rep *probeReport) readProfiles(ctx context.Context, c *onvif.Client, profiles []onvif.Profile) probeTokens {
	var tk probeTokens
	for _, p := range profiles {
		pp := probeProfile{Token: p.Token, Name: p.Name}
		if e := p.Encoder; e != nil {
			pp.Encoding, pp.Width, pp.Height = e.Encoding, e.Resolution.Width, e.Resolution.Height
			if e.RateControl != nil {
				pp.FPS = e.RateControl.FrameRateLimit
			}
		}
		pp.codecPath(ctx, c, &p)
		if p.Source != nil {
			pp.VideoSource = p.Source.Token
			if tk.videoSource == "" {
				tk.videoSource = p.Source.Token
			}
		}
		if p.PTZ != nil {
			pp.PTZConfig = p.PTZ.Token
			if tk.ptzProfile == "" {
				tk.ptzProfile, tk.ptzConfig = p.Token, p.PTZ.Token
			}
		}
		if u, err := c.GetStreamURI(ctx, p.Token); err == nil {
			pp.StreamURI = onvif.RedactURL(u)
		} else {
			rep.warn(err)
		}
		if u, err := c.GetSnapshotURI(ctx, p.Token); err == nil {
			pp.SnapshotURI = onvif.RedactURL(u)
		} else if !errors.Is(err, onvif.ErrNotSupported) {
			rep.warn(err)
		}
		rep.Profiles = append(rep.Profiles, pp)
	}
	return tk
}

// readPTZ reads the PTZ node, spaces, limits, presets and status.
func (rep *probeReport) readPTZ(ctx context.Context, c *onvif.Client, profile, config string) *probePTZ {
	pt := &probePTZ{Profile: profile, Configuration: config}
	if n, err := c.GetNodes(ctx); err == nil {
		pt.Nodes = n
	} else {
		rep.warn(err)
	}
	if o, err := c.GetConfigurationOptions(ctx, config); err == nil {
		pt.Spaces = o.Spaces
	} else {
		rep.warn(err)
	}
	if cf, err := c.GetConfiguration(ctx, config); err == nil {
		pt.PanTiltLimits, pt.ZoomLimits = cf.PanTiltLimit(), cf.ZoomLimit()
	} else {
		rep.warn(err)
	}
	if ps, err := c.GetPresets(ctx, profile); err == nil {
		pt.Presets = ps
	} else if errors.Is(err, onvif.ErrNotSupported) {
		pt.Presets = nil // Reolink zoom-only models: "absent"
	} else {
		rep.warn(err)
	}
	if st, err := c.GetStatus(ctx, profile); err == nil {
		pt.Status = &st
	} else {
		rep.warn(err)
	}
	return pt
}

// readMasks reads the Media2 mask options and masks of a video source
// configuration.
func (rep *probeReport) readMasks(ctx context.Context, c *onvif.Client, vsc string) *probeMasks {
	m := &probeMasks{Configuration: vsc}
	if o, err := c.GetMaskOptions(ctx, vsc); err == nil {
		m.Options = o
	} else {
		rep.warn(err)
	}
	if ms, err := c.GetMasks(ctx, vsc); err == nil {
		m.Masks = ms
	} else {
		rep.warn(err)
	}
	return m
}

// jsonClean replaces infinities (not valid JSON) in limits with ±1e308-free
// markers: JSON has no INF, so such bounds are omitted by setting them to
// the largest float; documented in docs/cli-json.md.
func jsonClean(r *probeReport) *probeReport {
	fix := func(l *onvif.Limits) {
		if l == nil {
			return
		}
		clamp := func(f *onvif.Float) {
			if math.IsInf(float64(*f), 1) {
				*f = onvif.Float(math.MaxFloat64)
			} else if math.IsInf(float64(*f), -1) {
				*f = onvif.Float(-math.MaxFloat64)
			}
		}
		clamp(&l.XRange.Min)
		clamp(&l.XRange.Max)
		if l.YRange != nil {
			clamp(&l.YRange.Min)
			clamp(&l.YRange.Max)
		}
	}
	if r.PTZ != nil {
		fix(r.PTZ.PanTiltLimits)
		fix(r.PTZ.ZoomLimits)
	}
	return r
}

func printProbe(w io.Writer, r *probeReport) {
	i := r.Info
	fmt.Fprintf(w, "Camera      %s\n", r.XAddr)
	fmt.Fprintf(w, "Identity    %s %s, firmware %s, serial %s, hardware %s\n", i.Manufacturer, i.Model, i.FirmwareVersion, i.SerialNumber, i.HardwareID)
	if r.Hostname != "" {
		fmt.Fprintf(w, "Hostname    %s\n", r.Hostname)
	}
	fmt.Fprintf(w, "Clock       camera %+.1fs from this host\n", float64(r.ClockOffsetMS)/1000)
	fmt.Fprintf(w, "Services    %d", len(r.Services))
	var ns []string
	for _, s := range r.Services {
		ns = append(ns, shortNS(s.Namespace))
	}
	if len(ns) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(ns, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Profiles")
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "  %-8s %s %dx%d@%d  stream %s\n", p.Token, p.Encoding, p.Width, p.Height, p.FPS, dash(p.StreamURI))
		if p.Codec != "" {
			fmt.Fprintf(w, "           codec %s (%s), decoded here by %s\n", p.Codec, p.CodecFrom, dash(p.Decoder))
		}
		if p.SnapshotURI != "" {
			fmt.Fprintf(w, "  %-8s snapshot %s\n", "", p.SnapshotURI)
		}
	}
	if r.PTZ != nil {
		printPTZ(w, r.PTZ)
	}
	if m := r.Masks; m != nil {
		o := m.Options
		fmt.Fprintf(w, "Masks       max %d masks × %d points, types %s, rectangle-only %t\n", o.MaxMasks, o.MaxPoints, strings.Join(o.Types, "/"), o.RectangleOnly)
		for _, mk := range m.Masks {
			var pts []string
			for _, p := range mk.Polygon {
				ip := p.ToImage()
				pts = append(pts, fmt.Sprintf("(%.3f,%.3f)", ip.X, ip.Y))
			}
			fmt.Fprintf(w, "  %-8s %s enabled=%t image=%s\n", mk.Token, mk.Type, mk.Enabled, strings.Join(pts, " "))
		}
	} else if !r.Media2 {
		fmt.Fprintln(w, "Masks       no Media2 service")
	}
	for _, wr := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wr)
	}
}

// printPTZ prints the PTZ part of a probe: spaces, limits, presets and
// status.
func printPTZ(w io.Writer, pt *probePTZ) {
	fmt.Fprintf(w, "PTZ         profile %s, configuration %s\n", pt.Profile, pt.Configuration)
	for _, s := range pt.Spaces.AbsolutePanTilt {
		fmt.Fprintf(w, "  abs pan/tilt space %s x[%g,%g]", s.URI, float64(s.XRange.Min), float64(s.XRange.Max))
		if s.YRange != nil {
			fmt.Fprintf(w, " y[%g,%g]", float64(s.YRange.Min), float64(s.YRange.Max))
		}
		fmt.Fprintln(w)
	}
	for _, s := range pt.Spaces.AbsoluteZoom {
		fmt.Fprintf(w, "  abs zoom space %s [%g,%g]\n", s.URI, float64(s.XRange.Min), float64(s.XRange.Max))
	}
	if l := pt.PanTiltLimits; l != nil {
		fmt.Fprintf(w, "  pan/tilt limits x[%g,%g]", float64(l.XRange.Min), float64(l.XRange.Max))
		if l.YRange != nil {
			fmt.Fprintf(w, " y[%g,%g]", float64(l.YRange.Min), float64(l.YRange.Max))
		}
		fmt.Fprintln(w)
	}
	if l := pt.ZoomLimits; l != nil {
		fmt.Fprintf(w, "  zoom limits [%g,%g]\n", float64(l.XRange.Min), float64(l.XRange.Max))
	}
	fmt.Fprintf(w, "  presets %d\n", len(pt.Presets))
	for _, p := range pt.Presets {
		pos := "unknown"
		if p.Position != nil {
			pos = p.Position.String()
		}
		fmt.Fprintf(w, "    %-6s %-16q %s\n", p.Token, p.Name, pos)
	}
	if st := pt.Status; st != nil {
		pos := "unknown"
		if st.Position != nil {
			pos = st.Position.String()
		}
		fmt.Fprintf(w, "  status %s (move: pan/tilt %s, zoom %s)\n", pos, dash(st.MoveStatus.PanTilt), dash(st.MoveStatus.Zoom))
	}
}

func shortNS(ns string) string {
	switch ns {
	case onvif.NSDevice:
		return "device"
	case onvif.NSMedia:
		return "media"
	case onvif.NSMedia2:
		return "media2"
	case onvif.NSPTZ:
		return "ptz"
	case onvif.NSEvents:
		return "events"
	case onvif.NSImaging:
		return "imaging"
	}
	return ns
}

// codecPath fills the profile's codec and the decoder velo would use for
// it on this machine (the first working element of masking/codec's table).
func (pp *probeProfile) codecPath(ctx context.Context, c *onvif.Client, p *onvif.Profile) {
	cd, from := camera.StreamCodec(ctx, c, p)
	if cd == "" {
		pp.CodecFrom = from
		return
	}
	pp.Codec, pp.CodecFrom = string(cd), from
	if d, ok := masking.ProbeElements().Decoder(cd); ok {
		pp.Decoder = d.Name
	}
}
