// Package config is the site configuration: YAML decoded strictly, defaults
// filled in one place (defaults.go), every section checked by its own
// validator with errors naming file, line, field and reason (validate.go),
// secrets read from files that only the velo user can read (secrets.go),
// schedules (schedule.go) and the approved views a reload compares
// (views.go). It does no network I/O and links no MQTT, broker or OpenCV.
package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"velo/agent/access"
	"velo/agent/audit"
	"velo/internal/safefile"
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
	Verify    VerifyConfig     `yaml:"verify"`
	Telemetry TelemetryConfig  `yaml:"telemetry"`
	Metrics   MetricsConfig    `yaml:"metrics"`
	Operators []OperatorConfig `yaml:"operators"`
	Cameras   []CameraConfig   `yaml:"cameras"`
	// Console is the installer console (console.go); ViewsFile the
	// managed file of views approved through it, included over Cameras.
	Console   ConsoleConfig `yaml:"console"`
	ViewsFile string        `yaml:"views_file"`

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
	// LegalBasis is the legal basis of the processing (e.g. "legitimate
	// interest, Art. 6(1)(f) GDPR: protection of property"); Recipients
	// are who the images may go to. Both belong on the first-layer sign
	// (EDPB-7): velo sign refuses without them and config check warns.
	LegalBasis string   `yaml:"legal_basis"`
	Recipients []string `yaml:"recipients"`
}

// OutputsConfig configures the gateway's outputs.
type OutputsConfig struct {
	// RTSPListen is the relay's address (masked streams). Default
	// 127.0.0.1:8654.
	RTSPListen string `yaml:"rtsp_listen"`
	// RTSPPlaintextLAN allows RTSPListen off loopback: plaintext RTSP on
	// the network (warned about; RTSPS is the way for viewers off the
	// gateway).
	RTSPPlaintextLAN bool `yaml:"rtsp_plaintext_lan"`
	// RTSPS serves the relay over TLS as well, for viewers off the gateway.
	RTSPS RTSPSConfig `yaml:"rtsps"`
	// RTSPMaxConns caps the relay's connections from other hosts in total,
	// RTSPMaxConnsPerIP those from one address; RTSPLoginTimeout closes a
	// connection that has not logged in by then (defaults 64, 8, 10s).
	RTSPMaxConns      int      `yaml:"rtsp_max_conns"`
	RTSPMaxConnsPerIP int      `yaml:"rtsp_max_conns_per_ip"`
	RTSPLoginTimeout  Duration `yaml:"rtsp_login_timeout"`
	// RecordDir receives recorded segments (per camera record.enabled).
	RecordDir string `yaml:"record_dir"`
	// Codec of the masked streams: H264 (default) or H265.
	Codec string `yaml:"codec"`
	// RecordingSocket is the unix socket on which velo run serves the
	// recordings to velo recording (G-3.4: nothing else reads them);
	// default /run/velo/recordings.sock, relative to the config's folder.
	RecordingSocket string `yaml:"recording_socket"`
}

// RTSPSConfig is the relay's TLS listener: all three fields or none.
type RTSPSConfig struct {
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RTSPSTLS builds the relay's RTSPS server configuration from
// outputs.rtsps (nil when RTSPS is off).
func (c *Config) RTSPSTLS() (*tls.Config, error) {
	r := c.Outputs.RTSPS
	if r.Listen == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.path(r.CertFile), c.path(r.KeyFile))
	if err != nil {
		return nil, c.fieldError("outputs.rtsps.cert_file", "certificate and key: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
	// PlaintextLAN allows a plaintext tcp:// or mqtt:// broker off this
	// machine, for a wired network closed to others; the dossier lists it
	// (G-3.3.1 f). Without it, such a URL is refused.
	PlaintextLAN bool `yaml:"plaintext_lan"`

	// Password is read from PasswordFile by Load.
	Password Secret `yaml:"-"`
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

// VerifyConfig is the verification of every frame against the approved
// view's reference picture: a frame that does not show the approved view
// is never encoded.
type VerifyConfig struct {
	// RequireReference (default true): a view without a reference picture
	// emits no video (view_unverified); false streams it unverified.
	RequireReference *bool `yaml:"require_reference"`
	// ReferenceDir holds the references `velo view capture` writes
	// (default <state_dir>/references; relative to the config's folder).
	ReferenceDir string `yaml:"reference_dir"`
	// MaxShift is the default largest tolerated displacement of the
	// picture, as a fraction of the frame width (default 0.01: a mask
	// edge moved by more than 1 % of the width is a mismatch).
	MaxShift float64 `yaml:"max_shift"`
	// RestoreFrames: consecutive matching frames before video resumes
	// after a mismatch or an approval (default 5).
	RestoreFrames int `yaml:"restore_frames"`
}

// ReferenceRequired reports whether a view needs a reference to stream.
func (v VerifyConfig) ReferenceRequired() bool {
	return v.RequireReference == nil || *v.RequireReference
}

// AuditConfig configures the audit log (G-4.6(1)), kept in
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

// OperatorConfig is a person with roles on some cameras. Their password
// file holds the slow-hash credential `velo passwd` writes (or, with a
// warning, the plaintext password): it authenticates the CLI, RTSP reading
// (with the derived stream password) and MQTT commands (agent/access).
type OperatorConfig struct {
	Name         string   `yaml:"name"`
	PasswordFile string   `yaml:"password_file"`
	Roles        []string `yaml:"roles"`
	Cameras      []string `yaml:"cameras"`
	// CombinedRolesReason says why this one person needs roles that both
	// move cameras and show video (G-3.3.1 a, d); without it such roles are
	// refused. The dossier lists it.
	CombinedRolesReason string `yaml:"combined_roles_reason"`

	cred         *access.Credential
	noCommandKey error // why cred verifies no command (older forms)
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
	// Workers: whether the camera may film workers, and the agreement or
	// authorisation that allows it (L300-4).
	Workers *WorkersConfig `yaml:"workers"`
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
	Masks []maskspec.Mask `yaml:"masks"`
	// MaxShift overrides verify.max_shift for a fixed camera's view.
	MaxShift float64 `yaml:"max_shift"`
	PTZLock  struct {
		Interval Duration `yaml:"interval"`
	} `yaml:"ptz_lock"`
	Record   RecordConfig    `yaml:"record"`
	Schedule *ScheduleConfig `yaml:"schedule"`
	Encoder  struct {
		Element     string `yaml:"element"`
		BitrateKbps int    `yaml:"bitrate_kbps"`
		FPS         int    `yaml:"fps"`
	} `yaml:"encoder"`
	// Capture bounds the calls into the capture (zero: masking's
	// defaults): a call past its bound is abandoned and the capture
	// reconnected; no frame for video_lost_after is a video_lost event.
	Capture struct {
		OpenTimeout    Duration `yaml:"open_timeout"`
		ReadTimeout    Duration `yaml:"read_timeout"`
		VideoLostAfter Duration `yaml:"video_lost_after"`
	} `yaml:"capture"`

	// Dynamic masks people as they move (G-4.5, G-5.3): a fixed camera
	// has its dynamic_zone in it, a PTZ camera one per preset.
	Dynamic *DynamicConfig `yaml:"dynamic"`

	// Password is read from PasswordFile by Load; it is sent only to the
	// camera's own host.
	Password Secret `yaml:"-"`
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
	Tolerance float64 `yaml:"tolerance"`
	// MaxShift overrides verify.max_shift for this view.
	MaxShift float64         `yaml:"max_shift"`
	Approval ApprovalConfig  `yaml:"approval"`
	Masks    []maskspec.Mask `yaml:"masks"`
	// DynamicZone is where people can appear in this view, for the
	// camera's dynamic masking (required on every preset when it is on).
	DynamicZone []maskspec.Point `yaml:"dynamic_zone"`
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
func Load(path string) (*Config, error) { return LoadWithViews(path, nil) }

// LoadWithViews is Load with views (if not nil) in place of the managed
// views file's content: a candidate checked before it is written.
func LoadWithViews(path string, views []byte) (*Config, error) {
	c, err := loadUnchecked(path, views)
	if err != nil {
		return nil, err
	}
	if err := c.readSecrets(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := c.checkOwnPasswordFiles(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadUnchecked reads and validates path (with its managed views file,
// part of the config) but reads none of the other files it names (velo
// passwd writes one of them). It cannot authenticate anyone.
func LoadUnchecked(path string) (*Config, error) { return loadUnchecked(path, nil) }

func loadUnchecked(path string, views []byte) (*Config, error) {
	// Bounded and never blocking: a FIFO named as the config would hang
	// velo run, a huge file would cost many times its size to decode.
	data, err := safefile.ReadFile(path, safefile.MaxConfigBytes)
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
	if err := c.includeViews(views); err != nil {
		return nil, err
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
	if !filepath.IsAbs(c.Outputs.RecordingSocket) {
		c.Outputs.RecordingSocket = filepath.Join(base, c.Outputs.RecordingSocket)
	}
	if c.Verify.ReferenceDir != "" && !filepath.IsAbs(c.Verify.ReferenceDir) {
		c.Verify.ReferenceDir = filepath.Join(base, c.Verify.ReferenceDir)
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

// RedactURL is raw without its userinfo, for errors and logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
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
		pem, err := safefile.ReadFile(c.path(b.CAFile), safefile.MaxConfigBytes)
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
		cert, err := c.clientCertificate()
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// clientCertificate reads the broker's client certificate and its key
// (a secret file, checked as such).
func (c *Config) clientCertificate() (tls.Certificate, error) {
	certPEM, err := safefile.ReadFile(c.path(c.Broker.CertFile), safefile.MaxConfigBytes)
	if err != nil {
		return tls.Certificate{}, c.fieldError("broker.cert_file", "%v", err)
	}
	keyPEM, err := c.readSecretBytes("broker.key_file", c.Broker.KeyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, c.fieldError("broker.cert_file", "client certificate: %v", err)
	}
	return cert, nil
}

// HasRole reports whether op holds role.
func (op *OperatorConfig) HasRole(role string) bool { return slices.Contains(op.Roles, role) }

// May reports whether op may do act (on camera, if not empty).
func (op *OperatorConfig) May(act access.Action, camera string) error {
	return access.May(access.Operator{Name: op.Name, Roles: op.Roles, Cameras: op.Cameras}, act, camera)
}

// Credential is what the gateway keeps of op's password (nil when the
// config was loaded without its secrets).
func (op *OperatorConfig) Credential() *access.Credential { return op.cred }

// Authenticate checks an operator's password (through the slow key
// derivation, constant-time compare); an unknown name takes as long.
func (c *Config) Authenticate(name, password string) (*OperatorConfig, error) {
	op := c.Operator(name)
	if op == nil {
		access.SpendCheck(c.Site.ID, name, password)
	}
	if op == nil || !op.cred.CheckPassword(password) {
		return nil, fmt.Errorf("operator %q: authentication failed", name)
	}
	return op, nil
}

// Camera returns the configured camera with id, or nil.
func (c *Config) Camera(id string) *CameraConfig {
	for i := range c.Cameras {
		if c.Cameras[i].ID == id {
			return &c.Cameras[i]
		}
	}
	return nil
}

// File is the path the config was loaded from.
func (c *Config) File() string { return c.file }

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
func (c *Config) BrokerCredentials() (string, string) {
	return c.Broker.Username, c.Broker.Password.Reveal()
}

// AuditDir is where a config's audit log lives.
func AuditDir(cfg *Config) string { return filepath.Join(cfg.StateDir, "audit") }

// AuditOptions are the audit log's settings from the config.
func (c *Config) AuditOptions() audit.Options {
	return audit.Options{Keep: time.Duration(c.Audit.Keep), MaxFileBytes: int64(c.Audit.MaxFileMB) << 20}
}

// ReferenceDir is where the config's view references are kept.
func (c *Config) ReferenceDir() string {
	if c.Verify.ReferenceDir == "" {
		return filepath.Join(c.StateDir, "references")
	}
	return c.Verify.ReferenceDir
}

// MaxShift is the tolerated displacement of a view (preset "" for a fixed
// camera) as a fraction of the frame width.
func (c *Config) MaxShift(cam *CameraConfig, preset string) float64 {
	for _, p := range cam.Presets {
		if p.Token == preset && p.MaxShift != 0 {
			return p.MaxShift
		}
	}
	if preset == "" && cam.MaxShift != 0 {
		return cam.MaxShift
	}
	return c.Verify.MaxShift
}

// ReferencePath is where the reference picture of a view (preset "" for a
// fixed camera) is kept, for daylight or for the night (IR) picture.
func (c *Config) ReferencePath(camera, preset string, night bool) string {
	name := "fixed"
	if preset != "" {
		name = "preset-" + url.PathEscape(preset)
	}
	light := ".day.ref"
	if night {
		light = ".night.ref"
	}
	return filepath.Join(c.ReferenceDir(), camera, name+light)
}
