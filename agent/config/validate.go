package config

import (
	"velo/masking/codec"

	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/masking/maskspec"
)

// Validate fills the defaults, then checks every section; it does no I/O.
// The first error names file, line, field and reason.
func (c *Config) Validate() error {
	c.applyDefaults()
	for _, check := range []func() error{c.validateSite, c.validateOutputs, c.validateBroker, c.validateAudit, c.validateVerify, c.validateDiscovery, c.validateCameras, c.validateOperators, c.validateConsole, c.validateTelemetry} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// topicSafe reports whether s can name an MQTT topic level.
func topicSafe(s string) bool { return s != "" && !strings.ContainsAny(s, "/#+ ") }

func (c *Config) validateSite() error {
	if strings.TrimSpace(c.Site.Name) == "" {
		return c.fieldError("site.name", "required")
	}
	if strings.TrimSpace(c.Site.Controller) == "" {
		return c.fieldError("site.controller", "required (the titolare answering for the site)")
	}
	if len(c.Site.Purposes) == 0 {
		return c.fieldError("site.purposes", "at least one purpose is required (G-2c)")
	}
	if !topicSafe(c.Site.ID) {
		return c.fieldError("site.id", "%q must be non-empty without / # + or spaces (it names MQTT topics)", c.Site.ID)
	}
	if !topicSafe(c.Gateway) {
		return c.fieldError("gateway", "%q must be non-empty without / # + or spaces (it names MQTT topics)", c.Gateway)
	}
	c.warnNoticeGaps()
	return nil
}

// warnNoticeGaps warns about what the first-layer sign should say and the
// config does not (EDPB-7): velo sign refuses the first two, and a DPO,
// where one is appointed (Art. 37 GDPR), must be named on it.
func (c *Config) warnNoticeGaps() {
	for _, gap := range []struct {
		field, why string
		missing    bool
	}{
		{"site.contact", "where data subjects exercise their rights; velo sign refuses without it", strings.TrimSpace(c.Site.Contact) == ""},
		{"site.legal_basis", "the legal basis of the processing; velo sign refuses without it", strings.TrimSpace(c.Site.LegalBasis) == ""},
		{"site.recipients", "who the images may be given to; velo sign refuses without them", len(c.Site.Recipients) == 0},
		{"site.dpo", "the data protection officer's contact; if one is appointed (Art. 37 GDPR) the sign must name them", strings.TrimSpace(c.Site.DPO) == ""},
	} {
		msg := gap.field + ": not set (EDPB-7): " + gap.why
		if gap.missing && !slices.Contains(c.Warnings, msg) { // Validate may run twice
			c.Warnings = append(c.Warnings, msg)
		}
	}
}

func (c *Config) validateOutputs() error {
	o := &c.Outputs
	host, _, err := net.SplitHostPort(o.RTSPListen)
	if err != nil {
		return c.fieldError("outputs.rtsp_listen", "%q is not host:port", o.RTSPListen)
	}
	if !loopbackHost(host) {
		if !o.RTSPPlaintextLAN {
			return c.fieldError("outputs.rtsp_listen", "%q is off loopback: plaintext RTSP would carry the video and the logins across the network; serve other hosts over outputs.rtsps, or set outputs.rtsp_plaintext_lan: true", o.RTSPListen)
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("outputs.rtsp_plaintext_lan: the relay serves plaintext RTSP on %s: masked video and digest logins cross the network unencrypted; prefer outputs.rtsps", o.RTSPListen))
	}
	for _, l := range []struct {
		field     string
		v, lo, hi int
	}{{"outputs.rtsp_max_conns", o.RTSPMaxConns, 1, 4096}, {"outputs.rtsp_max_conns_per_ip", o.RTSPMaxConnsPerIP, 1, o.RTSPMaxConns}} {
		if l.v < l.lo || l.v > l.hi {
			return c.fieldError(l.field, "%d is out of %d..%d", l.v, l.lo, l.hi)
		}
	}
	if d := time.Duration(o.RTSPLoginTimeout); d < time.Second || d > 2*time.Minute {
		return c.fieldError("outputs.rtsp_login_timeout", "%v is out of 1s..2m", d)
	}
	cd, err := codec.Parse(o.Codec)
	if err != nil {
		return c.fieldError("outputs.codec", "%q is not H264 or H265", o.Codec)
	}
	o.Codec = string(cd)
	// A unix socket's path fits in sun_path (108 bytes with its NUL),
	// resolved against the config's folder as Load will.
	p := o.RecordingSocket
	if !filepath.IsAbs(p) && c.file != "" {
		p = filepath.Join(filepath.Dir(c.file), p)
	}
	if len(p) > 100 || strings.ContainsRune(p, 0) {
		return c.fieldError("outputs.recording_socket", "%q (resolved: %q): a unix socket path must be at most 100 bytes", o.RecordingSocket, p)
	}
	return c.validateRTSPS()
}

// validateRTSPS: the TLS listener needs its address, certificate and key.
func (c *Config) validateRTSPS() error {
	r := c.Outputs.RTSPS
	if r == (RTSPSConfig{}) {
		return nil
	}
	if _, _, err := net.SplitHostPort(r.Listen); err != nil {
		return c.fieldError("outputs.rtsps.listen", "%q is not host:port", r.Listen)
	}
	if r.Listen == c.Outputs.RTSPListen {
		return c.fieldError("outputs.rtsps.listen", "%q is outputs.rtsp_listen too", r.Listen)
	}
	if r.CertFile == "" || r.KeyFile == "" {
		return c.fieldError("outputs.rtsps.cert_file", "cert_file and key_file are required with listen")
	}
	return nil
}

// loopbackHost: host names this machine only (a loopback IP or localhost).
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateBroker() error {
	b := &c.Broker
	var err error
	if b.URL == "" {
		err = c.validateEmbeddedBroker()
	} else {
		err = c.validateBrokerURL()
	}
	if err != nil {
		return err
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
	if c.PlaintextBrokerOffHost() && !b.PlaintextLAN {
		return c.fieldError("broker.url", "%q is plaintext to another host: use mqtts:// (G-3.3.1 f), or set broker.plaintext_lan: true for a wired network closed to others (the dossier lists it)", RedactURL(b.URL))
	}
	return nil
}

// PlaintextBrokerOffHost reports whether the central broker is reached in
// plaintext at another host than this one.
func (c *Config) PlaintextBrokerOffHost() bool {
	u, err := url.Parse(c.Broker.URL)
	if err != nil || c.Broker.URL == "" || (u.Scheme != "tcp" && u.Scheme != "mqtt") {
		return false
	}
	if u.Hostname() == "localhost" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip == nil || !ip.IsLoopback()
}

func (c *Config) validateEmbeddedBroker() error {
	b := &c.Broker
	if b.CAFile != "" || b.CertFile != "" || b.KeyFile != "" || b.Username != "" || b.PasswordFile != "" {
		return c.fieldError("broker.url", "required when broker TLS or credentials are set")
	}
	host, _, err := net.SplitHostPort(b.EmbeddedListen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return c.fieldError("broker.embedded_listen", "%q must be a loopback host:port (the embedded broker serves this host only)", b.EmbeddedListen)
	}
	return nil
}

func (c *Config) validateBrokerURL() error {
	b := &c.Broker
	if b.EmbeddedListen != "" {
		return c.fieldError("broker.embedded_listen", "only without broker.url")
	}
	u, err := url.Parse(b.URL)
	if err != nil || u.Host == "" {
		return c.fieldError("broker.url", "%q is not scheme://host:port", RedactURL(b.URL))
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
	return nil
}

func (c *Config) validateAudit() error {
	a := &c.Audit
	if time.Duration(a.Keep) < audit.MinKeep {
		return c.fieldError("audit.keep", "%v is below six months (%v): G-4.6(1) keeps the audit log at least six months", time.Duration(a.Keep), audit.MinKeep)
	}
	if v := time.Duration(a.HeadInterval); v < 10*time.Second || v > time.Hour {
		return c.fieldError("audit.head_interval", "%v out of 10s..1h", v)
	}
	if a.MaxFileMB < 1 || a.MaxFileMB > 1024 {
		return c.fieldError("audit.max_file_mb", "%d out of 1..1024", a.MaxFileMB)
	}
	return nil
}

// shiftLimits bound verify.max_shift and its per-view overrides.
const minShift, maxShift = 0.002, 0.1

func (c *Config) validateVerify() error {
	v := c.Verify
	if v.MaxShift < minShift || v.MaxShift > maxShift {
		return c.fieldError("verify.max_shift", "%g out of %g..%g (a fraction of the frame width)", v.MaxShift, minShift, maxShift)
	}
	if v.RestoreFrames < 1 || v.RestoreFrames > 100 {
		return c.fieldError("verify.restore_frames", "%d out of 1..100", v.RestoreFrames)
	}
	return nil
}

func (c *Config) validateDiscovery() error {
	d := &c.Discovery
	if !d.Enabled {
		return nil
	}
	if !d.Multicast && len(d.Unicast) == 0 {
		return c.fieldError("discovery", "enabled without multicast or unicast targets")
	}
	if v := time.Duration(d.Interval); v < 30*time.Second || v > 24*time.Hour {
		return c.fieldError("discovery.interval", "%v out of 30s..24h", v)
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
	return nil
}

func (c *Config) validateOperators() error {
	ids := map[string]bool{}
	for _, cam := range c.Cameras {
		ids[cam.ID] = true
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
		roles := strings.Join(access.Roles(), ", ")
		if len(op.Roles) == 0 {
			return c.fieldError(f("roles"), "operator %q: at least one of %s", op.Name, roles)
		}
		for j, r := range op.Roles {
			if !access.IsRole(r) {
				return c.fieldError(fmt.Sprintf("operators[%d].roles[%d]", i, j), "operator %q: unknown role %q (one of %s)", op.Name, r, roles)
			}
		}
		for j, id := range op.Cameras {
			if !ids[id] {
				return c.fieldError(fmt.Sprintf("operators[%d].cameras[%d]", i, j), "operator %q: no camera %q", op.Name, id)
			}
		}
	}
	return c.validateOperatorSeparation()
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

// validateMaskSet checks one view's masks.
func (c *Config) validateMaskSet(field string, set maskspec.MaskSet) error {
	if err := set.Validate(); err != nil {
		return c.fieldError(field, "%v", err)
	}
	return nil
}
