// Package camsim simulates ONVIF cameras for tests and demos: N cameras in
// one process, each on its own loopback address with its own identity,
// credentials, clock, Media2 masks, PTZ motor, quirk switches, WS-Discovery
// responder and a synthetic H.264 scene served over RTSP.
//
// Lifecycle: New validates a Config (no I/O); Start binds every camera's
// sockets and starts its goroutines; Close stops them and waits. A Sim is
// safe for concurrent use; controls (Tamper, SetFault, SetClockSkew…) may be
// called while it serves.
package camsim

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the simulator's YAML configuration (see `camsim --help`).
type Config struct {
	// Discovery configures the WS-Discovery responder.
	Discovery DiscoveryConfig `yaml:"discovery"`
	Cameras   []CameraConfig  `yaml:"cameras"`
}

// DiscoveryConfig configures WS-Discovery.
type DiscoveryConfig struct {
	// Multicast joins 239.255.255.250:3702 and sends Hello/Bye. Off by
	// default: only enable it inside a network namespace, never on a LAN.
	Multicast bool `yaml:"multicast"`
	// Unicast answers probes sent to each camera's address:UnicastPort.
	// Default true.
	Unicast *bool `yaml:"unicast"`
	// UnicastPort is the port unicast probes are answered on. Default 3702.
	UnicastPort int `yaml:"unicast_port"`
	// Group overrides the multicast group (tests).
	Group string `yaml:"group"`
}

// AuthMode says how a camera authenticates.
type AuthMode string

// Auth modes.
const (
	AuthWSSE   AuthMode = "wsse"   // WS-Security UsernameToken only
	AuthDigest AuthMode = "digest" // HTTP digest only (WS-Security ignored)
	AuthEither AuthMode = "either" // either is accepted
	AuthNone   AuthMode = "none"   // no authentication at all
)

// CameraConfig is one simulated camera.
type CameraConfig struct {
	ID      string `yaml:"id"`
	Address string `yaml:"address"` // 127.0.0.x
	// HTTPPort serves ONVIF (device service at /onvif/device_service);
	// 0 picks a free port at Start.
	HTTPPort int `yaml:"http_port"`
	// RTSPPort serves the H.264 scene; 0 picks a free port at Start.
	RTSPPort int `yaml:"rtsp_port"`
	// NoVideo disables the RTSP server and the encoder.
	NoVideo bool `yaml:"no_video"`

	Manufacturer string `yaml:"manufacturer"`
	Model        string `yaml:"model"`
	Firmware     string `yaml:"firmware"`
	Serial       string `yaml:"serial"`
	HardwareID   string `yaml:"hardware_id"`
	Hostname     string `yaml:"hostname"`
	Endpoint     string `yaml:"endpoint"` // urn:uuid:…; derived from serial when empty

	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Auth     AuthMode `yaml:"auth"`
	// DigestAlgorithms offered on 401: MD5, SHA-256 (default both).
	DigestAlgorithms []string `yaml:"digest_algorithms"`
	// ClockSkew shifts the camera clock (e.g. "1h", "-1h").
	ClockSkew Duration `yaml:"clock_skew"`
	// ClockStart, when set, starts the camera clock at this instant (e.g.
	// "1970-01-01T00:00:00Z", a camera that lost its RTC).
	ClockStart string `yaml:"clock_start"`
	// ClockWindow is the accepted |Created − camera clock|. Default 5 s
	// (strict, like Axis replay protection).
	ClockWindow Duration `yaml:"clock_window"`
	// ReplayProtection refuses a WS-Security nonce seen before (Axis).
	// Off by default: many cameras accept repeats, and some clients
	// (libonvif's onvif-util) reuse a nonce within a second.
	ReplayProtection bool `yaml:"replay_protection"`

	// Scene is what the camera films: "ptz" (a panorama with a badge
	// reader and a street), "badge" (fixed view on a badge reader) or
	// "street" (fixed view on a street).
	Scene string `yaml:"scene"`
	// Source, when set, is a video file the camera streams instead of a
	// scene: looped, at FPS, scaled to Width×Height (real footage such as
	// Debian's opencv-doc clips). PTZ moves and tampering do not change
	// that picture.
	Source string `yaml:"source"`
	FPS    int    `yaml:"fps"`
	// GOPFrames is the keyframe interval (default 2 s of frames).
	GOPFrames int `yaml:"gop_frames"`
	// Encoding of both streams: H264 (default) or H265. An H.265 camera
	// says so only in Media2 (its Media profile says H264, as some Dahua
	// firmware does) and in its SDP.
	Encoding string `yaml:"encoding"`
	// Width/Height of the main stream. Default 1920x1080.
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// DayCycle is the period of a compressed day (daylight with sweeping
	// shadows, dusk, IR night with headlights, dawn); 0 is constant
	// daylight.
	DayCycle Duration `yaml:"day_cycle"`
	// Traffic puts cars on the street and walkers in front of the wall;
	// without it nothing in the scene moves.
	Traffic bool `yaml:"traffic"`

	PTZ   *PTZConfig  `yaml:"ptz"`
	Masks MaskConfig  `yaml:"masks"`
	Quirk QuirkConfig `yaml:"quirks"`

	// Events serves the ONVIF Events service (PullPoint) with a message on
	// every PTZ motion start and stop (events.go). Off by default.
	Events bool `yaml:"events"`
}

// PTZConfig configures the PTZ node.
type PTZConfig struct {
	// Speed of the motor in generic units per second (pan/tilt) and zoom
	// units per second. Defaults 0.5 and 0.25.
	PanTiltSpeed float64        `yaml:"pan_tilt_speed"`
	ZoomSpeed    float64        `yaml:"zoom_speed"`
	MaxPresets   int            `yaml:"max_presets"`
	Presets      []PresetConfig `yaml:"presets"`
	// Home is the start position.
	Home PositionConfig `yaml:"home"`
	// NoLimits hides PanTiltLimits/ZoomLimits (a camera that cannot limit).
	NoLimits bool `yaml:"no_limits"`
}

// PresetConfig is a stored preset.
type PresetConfig struct {
	Token string  `yaml:"token"`
	Name  string  `yaml:"name"`
	Pan   float64 `yaml:"pan"`
	Tilt  float64 `yaml:"tilt"`
	Zoom  float64 `yaml:"zoom"`
}

// PositionConfig is a PTZ position in generic spaces.
type PositionConfig struct {
	Pan  float64 `yaml:"pan"`
	Tilt float64 `yaml:"tilt"`
	Zoom float64 `yaml:"zoom"`
}

// MaskConfig configures Media2 masks.
type MaskConfig struct {
	// Disabled hides the Media2 service entirely.
	Disabled      bool `yaml:"disabled"`
	MaxMasks      int  `yaml:"max_masks"`
	MaxPoints     int  `yaml:"max_points"`
	RectangleOnly bool `yaml:"rectangle_only"`
}

// QuirkConfig switches on vendor behaviours seen in the field.
type QuirkConfig struct {
	// VendorNamespaces uses unusual prefixes (SOAP-ENV, dev:, sch: …) and a
	// default namespace on reply elements.
	VendorNamespaces bool `yaml:"vendor_namespaces"`
	// Chunked sends replies with Transfer-Encoding: chunked instead of
	// Content-Length.
	Chunked bool `yaml:"chunked"`
	// MoveStatusStuck always reports IDLE (Hikvision).
	MoveStatusStuck bool `yaml:"move_status_stuck"`
	// WrongXAddrHost reports this host:port in every XAddr (cheap OEM).
	WrongXAddrHost string `yaml:"wrong_xaddr_host"`
	// WrongStreamHost reports this host:port in GetStreamUri (a NATed
	// camera, or a spoofed or compromised one naming a host that collects
	// credentials).
	WrongStreamHost string `yaml:"wrong_stream_host"`
	// NoGetServices answers GetServices with ActionNotSupported (old
	// firmware: clients must fall back to GetCapabilities).
	NoGetServices bool `yaml:"no_get_services"`
	// EventsMoveOnly: motion events carry no position and no PTZPresets
	// topics (Axis: tnsaxis:Move with is_moving only); see events.go.
	EventsMoveOnly bool `yaml:"events_move_only"`
}

// Duration is a YAML duration ("1h", "-30m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and validates a YAML file.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("camsim: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("camsim: %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("camsim: %s: %w", path, err)
	}
	return c, nil
}

// Validate fills defaults and checks the config (no I/O).
func (c *Config) Validate() error {
	if len(c.Cameras) == 0 {
		return fmt.Errorf("cameras: at least one camera is required")
	}
	c.applyDefaults()
	seen := cameraKeys{ids: map[string]bool{}, addrs: map[string]bool{}}
	for i := range c.Cameras {
		if err := c.Cameras[i].validate(i, seen); err != nil {
			return err
		}
	}
	return nil
}

// applyDefaults fills every default of the config, in one place.
func (c *Config) applyDefaults() {
	d := &c.Discovery
	if d.UnicastPort == 0 {
		d.UnicastPort = 3702
	}
	if d.Unicast == nil {
		t := true
		d.Unicast = &t
	}
	setDefault(&d.Group, "239.255.255.250:3702")
	for i := range c.Cameras {
		c.Cameras[i].applyDefaults()
	}
}

func (cam *CameraConfig) applyDefaults() {
	setDefault(&cam.Manufacturer, "Velo-Sim")
	setDefault(&cam.Model, "SimCam")
	setDefault(&cam.Firmware, "1.0.0")
	setDefault(&cam.Serial, "SIM-"+cam.ID)
	setDefault(&cam.HardwareID, "sim-hw-1")
	setDefault(&cam.Hostname, "camsim-"+cam.ID)
	setDefault(&cam.Endpoint, "urn:uuid:"+stableUUID(cam.Serial))
	if cam.Auth == "" {
		cam.Auth = AuthEither
	}
	if len(cam.DigestAlgorithms) == 0 {
		cam.DigestAlgorithms = []string{"SHA-256", "MD5"}
	}
	if cam.ClockWindow == 0 {
		cam.ClockWindow = Duration(5 * time.Second)
	}
	setDefault(&cam.Scene, "street")
	if cam.FPS == 0 {
		cam.FPS = 15
	}
	if cam.Width == 0 {
		cam.Width, cam.Height = 1920, 1080
	}
	if cam.Masks.MaxMasks == 0 {
		cam.Masks.MaxMasks = 8
	}
	if cam.Masks.MaxPoints == 0 {
		cam.Masks.MaxPoints = 16
	}
	if p := cam.PTZ; p != nil {
		if p.PanTiltSpeed == 0 {
			p.PanTiltSpeed = 0.5
		}
		if p.ZoomSpeed == 0 {
			p.ZoomSpeed = 0.25
		}
		if p.MaxPresets == 0 {
			p.MaxPresets = 300
		}
	}
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// cameraKeys is what must be unique across cameras.
type cameraKeys struct {
	ids   map[string]bool
	addrs map[string]bool // address, and address:http_port
}

// validate checks camera i (defaults applied), section by section.
func (cam *CameraConfig) validate(i int, seen cameraKeys) error {
	if cam.ID == "" {
		return fmt.Errorf("cameras[%d].id: required", i)
	}
	where := fmt.Sprintf("cameras[%d] (%s)", i, cam.ID)
	if err := cam.validateNetwork(where, seen); err != nil {
		return err
	}
	if err := cam.validateAuth(where); err != nil {
		return err
	}
	if err := cam.validateVideo(where); err != nil {
		return err
	}
	return cam.validatePTZ(where)
}

// validateNetwork checks the id and address are unique and the ports in
// range.
func (cam *CameraConfig) validateNetwork(where string, seen cameraKeys) error {
	if seen.ids[cam.ID] {
		return fmt.Errorf("%s.id: duplicate", where)
	}
	seen.ids[cam.ID] = true
	a, err := netip.ParseAddr(cam.Address)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Errorf("%s.address: %q must be a 127.0.0.0/8 address", where, cam.Address)
	}
	if cam.HTTPPort < 0 || cam.HTTPPort > 65535 {
		return fmt.Errorf("%s.http_port: %d out of range", where, cam.HTTPPort)
	}
	key := fmt.Sprintf("%s:%d", cam.Address, cam.HTTPPort)
	if seen.addrs[key] && cam.HTTPPort != 0 {
		return fmt.Errorf("%s: address %s used twice", where, key)
	}
	if seen.addrs[cam.Address] {
		return fmt.Errorf("%s.address: %s used twice (independent clients match cameras by IP)", where, cam.Address)
	}
	seen.addrs[key], seen.addrs[cam.Address] = true, true
	if cam.RTSPPort < 0 || cam.RTSPPort > 65535 {
		return fmt.Errorf("%s.rtsp_port: %d out of range", where, cam.RTSPPort)
	}
	return nil
}

// validateAuth checks the auth mode, credentials, digest algorithms and
// clock.
func (cam *CameraConfig) validateAuth(where string) error {
	switch cam.Auth {
	case AuthWSSE, AuthDigest, AuthEither, AuthNone:
	default:
		return fmt.Errorf("%s.auth: %q is not wsse, digest, either or none", where, cam.Auth)
	}
	if cam.Auth != AuthNone && (cam.Username == "" || cam.Password == "") {
		return fmt.Errorf("%s: username and password required unless auth is none", where)
	}
	for _, alg := range cam.DigestAlgorithms {
		if alg != "MD5" && alg != "SHA-256" {
			return fmt.Errorf("%s.digest_algorithms: %q is not MD5 or SHA-256", where, alg)
		}
	}
	if cam.ClockStart != "" {
		if _, err := time.Parse(time.RFC3339, cam.ClockStart); err != nil {
			return fmt.Errorf("%s.clock_start: %q is not RFC 3339", where, cam.ClockStart)
		}
	}
	return nil
}

// validateVideo checks the scene, frame rate, size and day cycle.
func (cam *CameraConfig) validateVideo(where string) error {
	switch {
	case cam.Source != "":
		if st, err := os.Stat(cam.Source); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s.source: %q is not a readable video file (%v)", where, cam.Source, err)
		}
	case cam.Scene == "ptz", cam.Scene == "badge", cam.Scene == "street":
	default:
		return fmt.Errorf("%s.scene: %q is not ptz, badge or street", where, cam.Scene)
	}
	if cam.FPS < 1 || cam.FPS > 60 {
		return fmt.Errorf("%s.fps: %d out of 1..60", where, cam.FPS)
	}
	if cam.Encoding != "" && cam.Encoding != "H264" && cam.Encoding != "H265" {
		return fmt.Errorf("%s.encoding: %q is not H264 or H265", where, cam.Encoding)
	}
	if cam.Width < 64 || cam.Height < 64 || cam.Width%2 != 0 || cam.Height%2 != 0 {
		return fmt.Errorf("%s: width/height %dx%d must be even and ≥ 64", where, cam.Width, cam.Height)
	}
	if d := time.Duration(cam.DayCycle); d != 0 && d < 10*time.Second {
		return fmt.Errorf("%s.day_cycle: %v must be 0 (constant daylight) or ≥ 10s", where, d)
	}
	return nil
}

// validatePTZ checks the motor speeds and the stored presets.
func (cam *CameraConfig) validatePTZ(where string) error {
	p := cam.PTZ
	if p == nil {
		return nil
	}
	if p.PanTiltSpeed < 0 || p.ZoomSpeed < 0 {
		return fmt.Errorf("%s.ptz: speeds must be positive", where)
	}
	toks := map[string]bool{}
	for j, pr := range p.Presets {
		if pr.Token == "" {
			return fmt.Errorf("%s.ptz.presets[%d].token: required", where, j)
		}
		if toks[pr.Token] {
			return fmt.Errorf("%s.ptz.presets[%d].token: duplicate %q", where, j, pr.Token)
		}
		toks[pr.Token] = true
		if !inRange(pr.Pan, -1, 1) || !inRange(pr.Tilt, -1, 1) || !inRange(pr.Zoom, 0, 1) {
			return fmt.Errorf("%s.ptz.presets[%d]: position out of generic ranges", where, j)
		}
	}
	return nil
}

func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

// codec is the streams' encoding, H264 or H265.
func (cam *CameraConfig) codec() string {
	if cam.Encoding == "H265" {
		return "H265"
	}
	return "H264"
}
