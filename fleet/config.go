package fleet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"velo/internal/safefile"
)

// Config is fleet.yaml, the configuration of `velo fleet run`
// (docs/fleet.md). Load reads and checks it; defaults are filled in one
// place (setDefaults).
type Config struct {
	Broker     BrokerConfig `yaml:"broker"`
	Listen     string       `yaml:"listen"`      // HTTP: /metrics and the API (default 127.0.0.1:9787)
	ShareGroup string       `yaml:"share_group"` // events and stats through $share/<group>/…
	// StateFile keeps the audit pins across restarts (optional; relative
	// to the config's folder).
	StateFile  string     `yaml:"state_file"`
	Limits     Limits     `yaml:"limits"`
	Thresholds Thresholds `yaml:"thresholds"`
}

// BrokerConfig is the central broker and how velo fleet logs in.
type BrokerConfig struct {
	URL          string `yaml:"url"` // tcp://, mqtt://, ssl://, tls://, mqtts://
	ClientID     string `yaml:"client_id"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`

	password string
	tls      *tls.Config
}

// Limits bound what the fleet tracks, so a flood of made-up gateways
// cannot grow memory or the metric series without bound.
type Limits struct {
	MaxGateways int `yaml:"max_gateways"` // default 5000
	MaxCameras  int `yaml:"max_cameras"`  // default 50000, all gateways together
	// One gateway identity's share: the ACL lets a gateway publish under
	// any site id (velo/+/<user>/…), so its cameras are capped and its
	// name is tracked under at most this many site ids.
	MaxCamerasPerGateway int `yaml:"max_cameras_per_gateway"` // default 64
	MaxSitesPerGateway   int `yaml:"max_sites_per_gateway"`   // default 1: the site is pinned
}

// withDefaults fills the limits left at zero.
func (l Limits) withDefaults() Limits {
	for _, f := range []struct {
		v   *int
		def int
	}{{&l.MaxGateways, 5000}, {&l.MaxCameras, 50000}, {&l.MaxCamerasPerGateway, 64}, {&l.MaxSitesPerGateway, 1}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return l
}

// Thresholds decide what needs attention in `velo fleet status`.
type Thresholds struct {
	// TamperWindow: a tamper-like event keeps its camera in the list this
	// long (default 1h).
	TamperWindow Duration `yaml:"tamper_window"`
	// AuditHeadMaxAge: a gateway online with no audit head for this long
	// is listed (default 20m: four times the gateways' 5m interval).
	AuditHeadMaxAge Duration `yaml:"audit_head_max_age"`
	// StatsMaxAge: stats older than this are not used for outbox and
	// clock findings (default 5m).
	StatsMaxAge Duration `yaml:"stats_max_age"`
}

// Duration is a time.Duration written as "90s", "10m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 90s, 10m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultListen is where velo fleet serves /metrics and its API.
const DefaultListen = "127.0.0.1:9787"

// Load reads, defaults and checks a fleet config; errors name the file
// and the field. Files it names are relative to its folder.
func Load(path string) (*Config, error) {
	raw, err := safefile.ReadFile(path, safefile.MaxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("fleet config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fleet config %s: %w", path, err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("fleet config %s: %w", path, err)
	}
	if c.StateFile != "" && !filepath.IsAbs(c.StateFile) {
		c.StateFile = filepath.Join(filepath.Dir(path), c.StateFile)
	}
	if err := c.Broker.readFiles(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("fleet config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Broker.ClientID == "" {
		c.Broker.ClientID = "velo-fleet"
	}
	c.Limits = c.Limits.withDefaults()
	if c.Thresholds.TamperWindow == 0 {
		c.Thresholds.TamperWindow = Duration(time.Hour)
	}
	if c.Thresholds.AuditHeadMaxAge == 0 {
		c.Thresholds.AuditHeadMaxAge = Duration(20 * time.Minute)
	}
	if c.Thresholds.StatsMaxAge == 0 {
		c.Thresholds.StatsMaxAge = Duration(5 * time.Minute)
	}
}

// Validate checks the config without I/O.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Broker.URL)
	switch {
	case c.Broker.URL == "":
		return errors.New("broker.url: required (e.g. mqtts://broker.example:8883)")
	case err != nil || u.Host == "":
		return fmt.Errorf("broker.url: not a broker URL (scheme://host:port)")
	case u.User != nil:
		return errors.New("broker.url: credentials in the URL are refused; use broker.username and broker.password_file")
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("broker.url: scheme %q; use tcp, mqtt, ssl, tls or mqtts", u.Scheme)
	}
	if (c.Broker.CertFile == "") != (c.Broker.KeyFile == "") {
		return errors.New("broker.cert_file and broker.key_file: give both or neither")
	}
	if (c.Broker.CAFile != "" || c.Broker.CertFile != "") && !secureScheme(u.Scheme) {
		return fmt.Errorf("broker.url: TLS files are set but the scheme %q is plaintext; use mqtts://", u.Scheme)
	}
	if c.Broker.Username == "" && c.Broker.PasswordFile != "" {
		return errors.New("broker.username: required with broker.password_file")
	}
	if strings.ContainsAny(c.ShareGroup, "/+#$") {
		return fmt.Errorf("share_group: %q may not hold / + # or $", c.ShareGroup)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if l := c.Limits; l.MaxGateways < 0 || l.MaxCameras < 0 || l.MaxCamerasPerGateway < 0 || l.MaxSitesPerGateway < 0 {
		return errors.New("limits: max_gateways, max_cameras, max_cameras_per_gateway and max_sites_per_gateway must be positive")
	}
	for name, d := range map[string]Duration{"tamper_window": c.Thresholds.TamperWindow,
		"audit_head_max_age": c.Thresholds.AuditHeadMaxAge, "stats_max_age": c.Thresholds.StatsMaxAge} {
		if d < 0 {
			return fmt.Errorf("thresholds.%s: must be positive", name)
		}
	}
	return nil
}

func secureScheme(s string) bool { return s == "ssl" || s == "tls" || s == "mqtts" }

// readFiles reads the password and TLS files, relative to base.
func (b *BrokerConfig) readFiles(base string) error {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if b.PasswordFile != "" {
		raw, err := safefile.Read(rel(b.PasswordFile), safefile.ReadOptions{MaxBytes: safefile.MaxSecretBytes, OwnerOnly: true})
		if err != nil {
			return fmt.Errorf("broker.password_file: %w", err)
		}
		b.password, _, _ = strings.Cut(string(raw), "\n")
		b.password = strings.TrimRight(b.password, "\r")
		if b.password == "" {
			return fmt.Errorf("broker.password_file: %s: the first line is empty", b.PasswordFile)
		}
	}
	u, _ := url.Parse(b.URL)
	if !secureScheme(u.Scheme) {
		return nil
	}
	b.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if b.CAFile != "" {
		pem, err := safefile.ReadFile(rel(b.CAFile), safefile.MaxSecretBytes*4)
		if err != nil {
			return fmt.Errorf("broker.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("broker.ca_file: %s holds no PEM certificate", b.CAFile)
		}
		b.tls.RootCAs = pool
	}
	if b.CertFile != "" {
		cert, err := loadKeyPair(rel(b.CertFile), rel(b.KeyFile))
		if err != nil {
			return err
		}
		b.tls.Certificates = []tls.Certificate{cert}
	}
	return nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := safefile.ReadFile(certFile, safefile.MaxSecretBytes*4)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("broker.cert_file: %w", err)
	}
	key, err := safefile.Read(keyFile, safefile.ReadOptions{MaxBytes: safefile.MaxSecretBytes, OwnerOnly: true})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("broker.key_file: %w", err)
	}
	kp, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("broker.cert_file/key_file: %v", err)
	}
	return kp, nil
}

// String names the broker without its credentials: %v and %+v of a
// Config never show the password.
func (b BrokerConfig) String() string {
	return fmt.Sprintf("broker %s as %q", brokerAddr(b.URL), b.Username)
}

// GoString is String, for %#v.
func (b BrokerConfig) GoString() string { return b.String() }
