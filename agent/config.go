package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"velo/masking/maskspec"

	"gopkg.in/yaml.v3"
)

// Config is a site configuration (YAML). Load reads it; Validate checks it
// with no I/O beyond what Load already did.
type Config struct {
	Site    SiteConfig `yaml:"site"`
	Gateway string     `yaml:"gateway"`
	// StateDir holds the outbox and the command request ids (default
	// /var/lib/velo, the systemd StateDirectory).
	StateDir  string           `yaml:"state_dir"`
	Broker    BrokerConfig     `yaml:"broker"`
	Discovery DiscoveryConfig  `yaml:"discovery"`
	Outputs   OutputsConfig    `yaml:"outputs"`
	Audit     AuditConfig      `yaml:"audit"`
	Operators []OperatorConfig `yaml:"operators"`
	Cameras   []CameraConfig   `yaml:"cameras"`

	// Warnings are what Load accepted but an installer should fix
	// (printed by config check, logged by run).
	Warnings []string `yaml:"-"`

	file  string
	lines map[string]int
}

// SiteConfig names the site and its controller (titolare).
type SiteConfig struct {
	// ID names the site in MQTT topics (velo/<id>/<gateway>/...).
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Controller string   `yaml:"controller"`
	Purposes   []string `yaml:"purposes"`
	// Contact is where data subjects exercise their rights (address,
	// e-mail); it is printed on the signs and in the dossier.
	Contact string `yaml:"contact"`
	// DPO is the data protection officer's contact, if one is appointed.
	DPO string `yaml:"dpo"`
	// Notice is where the full information notice is available (URL or
	// place); printed on the signs.
	Notice string `yaml:"notice"`
}

// OutputsConfig configures the gateway's outputs.
type OutputsConfig struct {
	// RTSPListen is the relay's address (masked streams). Default
	// 127.0.0.1:8654.
	RTSPListen string `yaml:"rtsp_listen"`
	// RecordDir receives recorded segments (per camera record.enabled).
	RecordDir string `yaml:"record_dir"`
}

// BrokerConfig is the central MQTT broker. With no URL, velo run starts
// an embedded broker on EmbeddedListen (loopback only).
type BrokerConfig struct {
	URL          string   `yaml:"url"`
	CAFile       string   `yaml:"ca_file"`
	CertFile     string   `yaml:"cert_file"`
	KeyFile      string   `yaml:"key_file"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	ClientID     string   `yaml:"client_id"`
	KeepAlive    Duration `yaml:"keepalive"`
	AckTimeout   Duration `yaml:"ack_timeout"`
	BackoffMax   Duration `yaml:"backoff_max"`
	// EmbeddedListen is where the embedded broker listens when URL is
	// empty (default 127.0.0.1:1883).
	EmbeddedListen string `yaml:"embedded_listen"`
	// OutboxMaxMB caps the durable outbox (default 64).
	OutboxMaxMB int `yaml:"outbox_max_mb"`

	password string
	base     string
}

// DiscoveryConfig makes velo run look for ONVIF devices with WS-Discovery
// now and then: configured cameras are recognised (endpoint or address),
// every other device is reported (camera_unconfigured) and never streamed.
// Discovery sends no credentials anywhere.
type DiscoveryConfig struct {
	Enabled     bool     `yaml:"enabled"`
	Interval    Duration `yaml:"interval"` // default 10m; 30s..24h
	Window      Duration `yaml:"window"`   // default 3s; 500ms..30s
	Multicast   bool     `yaml:"multicast"`
	Interfaces  []string `yaml:"interfaces"`
	Unicast     []string `yaml:"unicast"`      // hosts or CIDRs probed on UnicastPort
	UnicastPort int      `yaml:"unicast_port"` // default 3702
}

// AuditConfig configures the audit log (REGULATION.md G-4.6(1)), kept in
// <state_dir>/audit.
type AuditConfig struct {
	// Keep is how long audit files are kept: default and minimum six
	// months (4392h).
	Keep Duration `yaml:"keep"`
	// HeadInterval is how often the chain head is published over MQTT
	// (audit_head event; default 5m, 10s..1h).
	HeadInterval Duration `yaml:"head_interval"`
	// MaxFileMB rotates audit files (default 8).
	MaxFileMB int `yaml:"max_file_mb"`
}

// RecordConfig is a camera's recording (masked video only) and its
// retention (G-3.4, ER-4.5).
type RecordConfig struct {
	Enabled bool     `yaml:"enabled"`
	Segment Duration `yaml:"segment"`
	// Retention: default 24h; more than 24h needs RetentionReason
	// (closures, holidays, a police request, a high-risk site); more than
	// 7 days also needs PriorCheckRef (the Garante's prior check).
	Retention       Duration `yaml:"retention"`
	RetentionReason string   `yaml:"retention_reason"`
	PriorCheckRef   string   `yaml:"prior_check_ref"`
}

// ScheduleConfig is a camera's active hours (G-4.3) in its time zone:
// outside them the camera emits no video at all (state scheduled-off). A
// weekday absent from Weekly is off all day; a holiday replaces its
// weekday's hours (no hours: off all day).
type ScheduleConfig struct {
	Timezone string              `yaml:"timezone"`
	Weekly   map[string][]string `yaml:"weekly"`
	Holidays []HolidayConfig     `yaml:"holidays"`

	loc     *time.Location
	weekly  [7][]span
	holiday map[string][]span
}

// HolidayConfig is a date with its own hours.
type HolidayConfig struct {
	Date  string   `yaml:"date"`
	Hours []string `yaml:"hours"`
}

// Roles an operator can hold (REGULATION.md G-3.3.1, ER-4.3).
const (
	RoleLiveViewer      = "live-viewer"
	RoleRecordingViewer = "recording-viewer"
	RoleExporter        = "exporter"
	RolePTZMaintainer   = "ptz-maintainer"
	RoleInstaller       = "installer"
	RoleAdmin           = "admin"
)

// Roles lists every role.
var Roles = []string{RoleLiveViewer, RoleRecordingViewer, RoleExporter, RolePTZMaintainer, RoleInstaller, RoleAdmin}

// OperatorConfig is a person with roles on some cameras. Their password
// file holds the slow-hash credential `velo passwd` writes (or, with a
// warning, the plaintext password): it authenticates the CLI, RTSP reading
// (with the derived stream password) and MQTT commands (credentials.go).
type OperatorConfig struct {
	Name         string   `yaml:"name"`
	PasswordFile string   `yaml:"password_file"`
	Roles        []string `yaml:"roles"`
	Cameras      []string `yaml:"cameras"`

	cred *lazyCred
}

// Duration is a YAML duration ("1s", "5m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 1s, 5m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// CameraConfig is one camera.
type CameraConfig struct {
	ID      string `yaml:"id"`
	Purpose string `yaml:"purpose"`
	// Location is a note on where the camera is and what it frames (for
	// the dossier, TN).
	Location string `yaml:"location"`
	// PoliceLink: the camera is linked to a police control room; its sign
	// is the second model (G-3.1, ER-4.8).
	PoliceLink bool `yaml:"police_link"`
	// Approval is a fixed camera's approved view and masks (ER-4.7); a
	// PTZ camera has one per preset.
	Approval *ApprovalConfig `yaml:"approval"`
	// Match identifies the camera: serial, MAC or endpoint — never its IP
	// alone.
	Match        MatchConfig `yaml:"match"`
	XAddr        string      `yaml:"xaddr"`
	Username     string      `yaml:"username"`
	PasswordFile string      `yaml:"password_file"`
	// Profile is the media profile token to stream (default: the first).
	Profile  string         `yaml:"profile"`
	FailMode string         `yaml:"fail_mode"`
	Presets  []PresetConfig `yaml:"presets"`
	// Masks apply to a fixed camera (no presets).
	Masks   []maskspec.Mask `yaml:"masks"`
	PTZLock struct {
		Interval Duration `yaml:"interval"`
	} `yaml:"ptz_lock"`
	Record   RecordConfig    `yaml:"record"`
	Schedule *ScheduleConfig `yaml:"schedule"`
	Encoder  struct {
		Element     string `yaml:"element"`
		BitrateKbps int    `yaml:"bitrate_kbps"`
		FPS         int    `yaml:"fps"`
	} `yaml:"encoder"`

	password string
}

// MatchConfig says how a discovered device is recognised.
type MatchConfig struct {
	Serial   string `yaml:"serial"`
	MAC      string `yaml:"mac"`
	Endpoint string `yaml:"endpoint"`
}

// PresetConfig is an approved view (ER-4.7: its approval is recorded).
type PresetConfig struct {
	Token    string `yaml:"token"`
	Position struct {
		Pan  float64 `yaml:"pan"`
		Tilt float64 `yaml:"tilt"`
		Zoom float64 `yaml:"zoom"`
	} `yaml:"position"`
	Tolerance float64         `yaml:"tolerance"`
	Approval  ApprovalConfig  `yaml:"approval"`
	Masks     []maskspec.Mask `yaml:"masks"`
}

// ApprovalConfig is who approved a view, when, and in which document.
type ApprovalConfig struct {
	By       string `yaml:"by" json:"by"`
	Date     string `yaml:"date" json:"date"`
	Document string `yaml:"document" json:"document"`
}

// Load reads path, decodes it strictly (unknown fields are errors), reads
// the password files it names, and validates. Every error names the file,
// line, field and reason.
func Load(path string) (*Config, error) {
	c, err := LoadUnchecked(path)
	if err != nil {
		return nil, err
	}
	if err := c.readSecrets(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadUnchecked reads and validates path but reads none of the files it
// names (velo passwd writes one of them). It cannot authenticate anyone.
func LoadUnchecked(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	c := &Config{file: path, lines: map[string]int{}}
	if len(root.Content) > 0 {
		walkLines(root.Content[0], "", c.lines)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	base := filepath.Dir(path)
	if !filepath.IsAbs(c.StateDir) {
		c.StateDir = filepath.Join(base, c.StateDir)
	}
	if c.Outputs.RecordDir != "" && !filepath.IsAbs(c.Outputs.RecordDir) {
		c.Outputs.RecordDir = filepath.Join(base, c.Outputs.RecordDir)
	}
	return c, nil
}

func walkLines(n *yaml.Node, path string, out map[string]int) {
	if _, ok := out[path]; !ok { // a key's own line wins over its value's
		out[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[p] = n.Content[i].Line
			walkLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkLines(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// fieldError names file, line, field and reason.
func (c *Config) fieldError(field, format string, args ...any) error {
	line := c.lines[field]
	for p := field; line == 0 && p != ""; {
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
		line = c.lines[p]
	}
	return fmt.Errorf("config: %s:%d: %s: %s", c.file, line, field, fmt.Sprintf(format, args...))
}

// Validate checks every rule; it does no I/O.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Site.Name) == "" {
		return c.fieldError("site.name", "required")
	}
	if strings.TrimSpace(c.Site.Controller) == "" {
		return c.fieldError("site.controller", "required (the titolare answering for the site)")
	}
	if len(c.Site.Purposes) == 0 {
		return c.fieldError("site.purposes", "at least one purpose is required (G-2c)")
	}
	if c.Site.ID == "" || strings.ContainsAny(c.Site.ID, "/#+ ") {
		return c.fieldError("site.id", "%q must be non-empty without / # + or spaces (it names MQTT topics)", c.Site.ID)
	}
	if c.Gateway == "" || strings.ContainsAny(c.Gateway, "/#+ ") {
		return c.fieldError("gateway", "%q must be non-empty without / # + or spaces (it names MQTT topics)", c.Gateway)
	}
	if c.Outputs.RTSPListen == "" {
		c.Outputs.RTSPListen = "127.0.0.1:8654"
	}
	if _, _, err := net.SplitHostPort(c.Outputs.RTSPListen); err != nil {
		return c.fieldError("outputs.rtsp_listen", "%q is not host:port", c.Outputs.RTSPListen)
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/velo"
	}
	if err := c.validateBroker(); err != nil {
		return err
	}
	if err := c.validateAudit(); err != nil {
		return err
	}
	if d := &c.Discovery; d.Enabled {
		if !d.Multicast && len(d.Unicast) == 0 {
			return c.fieldError("discovery", "enabled without multicast or unicast targets")
		}
		if d.Interval == 0 {
			d.Interval = Duration(10 * time.Minute)
		}
		if v := time.Duration(d.Interval); v < 30*time.Second || v > 24*time.Hour {
			return c.fieldError("discovery.interval", "%v out of 30s..24h", v)
		}
		if d.Window == 0 {
			d.Window = Duration(3 * time.Second)
		}
		if v := time.Duration(d.Window); v < 500*time.Millisecond || v > 30*time.Second {
			return c.fieldError("discovery.window", "%v out of 500ms..30s", v)
		}
		if d.UnicastPort < 0 || d.UnicastPort > 65535 {
			return c.fieldError("discovery.unicast_port", "%d is not a port", d.UnicastPort)
		}
		for i, u := range d.Unicast {
			if _, _, err := net.ParseCIDR(u); err != nil && net.ParseIP(u) == nil && strings.ContainsAny(u, "/ ") {
				return c.fieldError(fmt.Sprintf("discovery.unicast[%d]", i), "%q is not a host or CIDR", u)
			}
		}
	}
	ids := map[string]bool{}
	matches := map[string]string{}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		f := func(name string) string { return fmt.Sprintf("cameras[%d].%s", i, name) }
		if cam.ID == "" || strings.ContainsAny(cam.ID, "/#+ ") {
			return c.fieldError(f("id"), "%q must be non-empty without / # + or spaces", cam.ID)
		}
		if ids[cam.ID] {
			return c.fieldError(f("id"), "duplicate camera id %q", cam.ID)
		}
		ids[cam.ID] = true
		if strings.TrimSpace(cam.Purpose) == "" {
			return c.fieldError(f("purpose"), "camera %q: a purpose is required (G-2c)", cam.ID)
		}
		m := cam.Match
		key := ""
		switch {
		case m.Serial != "":
			key = "serial:" + m.Serial
		case m.MAC != "":
			if _, err := net.ParseMAC(m.MAC); err != nil {
				return c.fieldError(f("match.mac"), "camera %q: %q is not a MAC address", cam.ID, m.MAC)
			}
			key = "mac:" + strings.ToLower(m.MAC)
		case m.Endpoint != "":
			key = "endpoint:" + m.Endpoint
		default:
			return c.fieldError(f("match"), "camera %q: match by serial, mac or endpoint (never by IP alone)", cam.ID)
		}
		if other, dup := matches[key]; dup {
			return c.fieldError(f("match"), "camera %q matches the same device as %q", cam.ID, other)
		}
		matches[key] = cam.ID
		u, err := url.Parse(cam.XAddr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c.fieldError(f("xaddr"), "camera %q: %q is not http(s)://host/path", cam.ID, redactURL(cam.XAddr))
		}
		if u.User != nil {
			return c.fieldError(f("xaddr"), "camera %q: credentials belong in username/password_file, not in the URL", cam.ID)
		}
		if cam.Username != "" && cam.PasswordFile == "" {
			return c.fieldError(f("password_file"), "camera %q: required with username", cam.ID)
		}
		switch cam.FailMode {
		case "":
			cam.FailMode = string(maskspec.FailBlank)
		case string(maskspec.FailBlank), string(maskspec.FailDrop):
		default:
			return c.fieldError(f("fail_mode"), "camera %q: %q is not blank or drop", cam.ID, cam.FailMode)
		}
		if len(cam.Presets) > 0 && len(cam.Masks) > 0 {
			return c.fieldError(f("masks"), "camera %q: a PTZ camera has masks per preset, not camera-wide", cam.ID)
		}
		toks := map[string]bool{}
		for j := range cam.Presets {
			p := &cam.Presets[j]
			pf := func(name string) string { return fmt.Sprintf("cameras[%d].presets[%d].%s", i, j, name) }
			if p.Token == "" {
				return c.fieldError(pf("token"), "camera %q: required", cam.ID)
			}
			if toks[p.Token] {
				return c.fieldError(pf("token"), "camera %q: duplicate preset %q", cam.ID, p.Token)
			}
			toks[p.Token] = true
			pos := p.Position
			if pos.Pan < -1 || pos.Pan > 1 || pos.Tilt < -1 || pos.Tilt > 1 || pos.Zoom < 0 || pos.Zoom > 1 {
				return c.fieldError(pf("position"), "camera %q preset %q: outside the generic spaces (pan/tilt −1..1, zoom 0..1)", cam.ID, p.Token)
			}
			if p.Tolerance == 0 {
				p.Tolerance = 0.02
			}
			if p.Tolerance < 0 || p.Tolerance > 0.5 {
				return c.fieldError(pf("tolerance"), "camera %q preset %q: %g out of (0, 0.5]", cam.ID, p.Token, p.Tolerance)
			}
			if err := c.validateApproval(p.Approval, pf("approval"), fmt.Sprintf("camera %q preset %q", cam.ID, p.Token)); err != nil {
				return err
			}
			set := maskspec.MaskSet{Camera: cam.ID, Preset: p.Token, Masks: p.Masks}
			if err := set.Validate(); err != nil {
				return c.fieldError(pf("masks"), "%v", err)
			}
		}
		set := maskspec.MaskSet{Camera: cam.ID, Masks: cam.Masks}
		if err := set.Validate(); err != nil {
			return c.fieldError(f("masks"), "%v", err)
		}
		switch {
		case len(cam.Presets) > 0 && cam.Approval != nil:
			return c.fieldError(f("approval"), "camera %q: a PTZ camera's approvals are per preset", cam.ID)
		case len(cam.Presets) == 0 && cam.Approval == nil:
			return c.fieldError(f("approval"), "camera %q: a fixed camera's view and masks need an approval (by, date, document; ER-4.7)", cam.ID)
		case cam.Approval != nil:
			if err := c.validateApproval(*cam.Approval, f("approval"), fmt.Sprintf("camera %q", cam.ID)); err != nil {
				return err
			}
		}
		if cam.PTZLock.Interval != 0 && (time.Duration(cam.PTZLock.Interval) < 100*time.Millisecond || time.Duration(cam.PTZLock.Interval) > time.Minute) {
			return c.fieldError(f("ptz_lock.interval"), "camera %q: %v out of 100ms..1m", cam.ID, time.Duration(cam.PTZLock.Interval))
		}
		if cam.Record.Enabled && c.Outputs.RecordDir == "" {
			return c.fieldError("outputs.record_dir", "required: camera %q records", cam.ID)
		}
		if s := time.Duration(cam.Record.Segment); cam.Record.Enabled && s != 0 && (s < 10*time.Second || s > time.Hour) {
			return c.fieldError(f("record.segment"), "camera %q: %v out of 10s..1h", cam.ID, s)
		}
		if err := c.validateRecord(cam, f); err != nil {
			return err
		}
		if cam.Schedule != nil {
			if err := cam.Schedule.compile(); err != nil {
				return c.fieldError(f("schedule"), "camera %q: %v", cam.ID, err)
			}
		}
		if strings.Contains(cam.Encoder.Element, "!") {
			return c.fieldError(f("encoder.element"), "camera %q: one element, not a pipeline", cam.ID)
		}
	}
	names := map[string]bool{}
	for i, op := range c.Operators {
		f := func(name string) string { return fmt.Sprintf("operators[%d].%s", i, name) }
		if op.Name == "" || names[op.Name] {
			return c.fieldError(f("name"), "%q is empty or duplicate", op.Name)
		}
		names[op.Name] = true
		if op.PasswordFile == "" {
			return c.fieldError(f("password_file"), "operator %q: required", op.Name)
		}
		if len(op.Roles) == 0 {
			return c.fieldError(f("roles"), "operator %q: at least one of %s", op.Name, strings.Join(Roles, ", "))
		}
		for j, r := range op.Roles {
			if !slices.Contains(Roles, r) {
				return c.fieldError(fmt.Sprintf("operators[%d].roles[%d]", i, j), "operator %q: unknown role %q (one of %s)", op.Name, r, strings.Join(Roles, ", "))
			}
		}
		for j, id := range op.Cameras {
			if !ids[id] {
				return c.fieldError(fmt.Sprintf("operators[%d].cameras[%d]", i, j), "operator %q: no camera %q", op.Name, id)
			}
		}
	}
	return nil
}

// validateApproval checks an ER-4.7 approval: who, when, which document.
func (c *Config) validateApproval(a ApprovalConfig, field, what string) error {
	if strings.TrimSpace(a.By) == "" || a.Date == "" || strings.TrimSpace(a.Document) == "" {
		return c.fieldError(field, "%s: by, date and document are required (ER-4.7)", what)
	}
	if _, err := time.Parse("2006-01-02", a.Date); err != nil {
		return c.fieldError(field+".date", "%s: %q is not YYYY-MM-DD", what, a.Date)
	}
	return nil
}

// readSecrets reads password files (relative to the config's folder) and
// refuses files others can read.
func (c *Config) readSecrets(base string) error {
	read := func(field, p string) (string, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		st, err := os.Stat(p)
		if err != nil {
			return "", c.fieldError(field, "%v", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", c.fieldError(field, "%s is readable by group or others (mode %v); chmod 600", p, st.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", c.fieldError(field, "%v", err)
		}
		pw, _, _ := strings.Cut(string(data), "\n")
		if pw = strings.TrimRight(pw, "\r"); pw == "" {
			return "", c.fieldError(field, "%s: empty first line", p)
		}
		return pw, nil
	}
	for i := range c.Cameras {
		if c.Cameras[i].PasswordFile == "" {
			continue
		}
		pw, err := read(fmt.Sprintf("cameras[%d].password_file", i), c.Cameras[i].PasswordFile)
		if err != nil {
			return err
		}
		c.Cameras[i].password = pw
	}
	if c.Broker.PasswordFile != "" {
		pw, err := read("broker.password_file", c.Broker.PasswordFile)
		if err != nil {
			return err
		}
		c.Broker.password = pw
	}
	c.Broker.base = base
	if c.Broker.KeyFile != "" {
		if _, err := read("broker.key_file", c.Broker.KeyFile); err != nil {
			return err
		}
	}
	for _, f := range []struct{ field, path string }{{"broker.ca_file", c.Broker.CAFile}, {"broker.cert_file", c.Broker.CertFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(c.path(f.path)); err != nil {
			return c.fieldError(f.field, "%v", err)
		}
	}
	for i := range c.Operators {
		op := &c.Operators[i]
		field := fmt.Sprintf("operators[%d].password_file", i)
		pw, err := read(field, op.PasswordFile)
		if err != nil {
			return err
		}
		if isHashed(pw) {
			cr, err := parseCredential(pw, c.Site.ID, op.Name)
			if err != nil {
				return c.fieldError(field, "%s: %v", op.PasswordFile, err)
			}
			op.cred = &lazyCred{c: cr}
			continue
		}
		op.cred = &lazyCred{c: credential{site: c.Site.ID, operator: op.Name, plaintext: true}, password: pw}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: %s holds a plaintext password; store its slow hash instead: velo passwd --config %s --operator %s --password-file %s --out %s",
			field, op.Name, op.PasswordFile, c.file, op.Name, op.PasswordFile, op.PasswordFile))
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
}

func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Broker.base, p)
}

func (c *Config) validateBroker() error {
	b := &c.Broker
	if b.URL == "" {
		if b.CAFile != "" || b.CertFile != "" || b.KeyFile != "" || b.Username != "" || b.PasswordFile != "" {
			return c.fieldError("broker.url", "required when broker TLS or credentials are set")
		}
		if b.EmbeddedListen == "" {
			b.EmbeddedListen = "127.0.0.1:1883"
		}
		host, _, err := net.SplitHostPort(b.EmbeddedListen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return c.fieldError("broker.embedded_listen", "%q must be a loopback host:port (the embedded broker has no authentication)", b.EmbeddedListen)
		}
	} else {
		if b.EmbeddedListen != "" {
			return c.fieldError("broker.embedded_listen", "only without broker.url")
		}
		u, err := url.Parse(b.URL)
		if err != nil || u.Host == "" {
			return c.fieldError("broker.url", "%q is not scheme://host:port", redactURL(b.URL))
		}
		if u.User != nil {
			return c.fieldError("broker.url", "credentials belong in username/password_file, not in the URL")
		}
		tlsScheme := false
		switch u.Scheme {
		case "tcp", "mqtt":
		case "ssl", "tls", "mqtts":
			tlsScheme = true
		default:
			return c.fieldError("broker.url", "scheme %q is not tcp, mqtt, ssl, tls or mqtts", u.Scheme)
		}
		if !tlsScheme && (b.CAFile != "" || b.CertFile != "" || b.KeyFile != "") {
			return c.fieldError("broker.url", "TLS files are set but %q is plaintext: use mqtts:// (plaintext is refused when TLS is configured)", u.Scheme)
		}
	}
	if (b.CertFile == "") != (b.KeyFile == "") {
		return c.fieldError("broker.cert_file", "cert_file and key_file go together (mutual TLS)")
	}
	if b.Username != "" && b.PasswordFile == "" {
		return c.fieldError("broker.password_file", "required with username")
	}
	if b.ClientID != "" && strings.ContainsAny(b.ClientID, "/#+ ") {
		return c.fieldError("broker.client_id", "%q has / # + or spaces", b.ClientID)
	}
	for _, d := range []struct {
		field    string
		v        Duration
		min, max time.Duration
	}{{"broker.keepalive", b.KeepAlive, 5 * time.Second, 10 * time.Minute}, {"broker.ack_timeout", b.AckTimeout, time.Second, 5 * time.Minute}, {"broker.backoff_max", b.BackoffMax, time.Second, time.Hour}} {
		if d.v != 0 && (time.Duration(d.v) < d.min || time.Duration(d.v) > d.max) {
			return c.fieldError(d.field, "%v out of %v..%v", time.Duration(d.v), d.min, d.max)
		}
	}
	if b.OutboxMaxMB < 0 || b.OutboxMaxMB > 4096 {
		return c.fieldError("broker.outbox_max_mb", "%d out of 1..4096", b.OutboxMaxMB)
	}
	if b.OutboxMaxMB == 0 {
		b.OutboxMaxMB = 64
	}
	return nil
}

// TLSConfig builds the broker's TLS configuration (nil for plaintext).
func (c *Config) TLSConfig() (*tls.Config, error) {
	b := c.Broker
	u, err := url.Parse(b.URL)
	if err != nil || b.URL == "" {
		return nil, nil
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
	default:
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if b.CAFile != "" {
		pem, err := os.ReadFile(c.path(b.CAFile))
		if err != nil {
			return nil, c.fieldError("broker.ca_file", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, c.fieldError("broker.ca_file", "no PEM certificate in %s", c.path(b.CAFile))
		}
		tc.RootCAs = pool
	}
	if b.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.path(b.CertFile), c.path(b.KeyFile))
		if err != nil {
			return nil, c.fieldError("broker.cert_file", "client certificate: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// HasRole reports whether op holds role.
func (op *OperatorConfig) HasRole(role string) bool { return slices.Contains(op.Roles, role) }

// Operator returns the operator with name, or nil.
func (c *Config) Operator(name string) *OperatorConfig {
	for i := range c.Operators {
		if c.Operators[i].Name == name {
			return &c.Operators[i]
		}
	}
	return nil
}

// BrokerURL is the broker a client of this gateway connects to: the
// configured URL, or the embedded broker's address.
func (c *Config) BrokerURL() string {
	if c.Broker.URL != "" {
		return c.Broker.URL
	}
	return "tcp://" + c.Broker.EmbeddedListen
}

// BrokerCredentials are the gateway's broker username and password.
func (c *Config) BrokerCredentials() (string, string) { return c.Broker.Username, c.Broker.password }
