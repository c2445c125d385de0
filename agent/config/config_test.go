package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"velo/internal/testkit"
)

func TestConfigGood(t *testing.T) {
	c, err := Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cameras[0].Password.Reveal() != "cam-secret" || !c.Operators[0].Credential().CheckPassword("op-secret") || c.Operators[0].Credential().CheckPassword("op-secreT") {
		t.Error("password files not read")
	}
	if c.Cameras[1].FailMode != "blank" || c.Cameras[0].Presets[0].Masks[0].Style != "fill" {
		t.Error("defaults not filled")
	}
}

// One case per rule: each error names file, line, field and reason.
func TestConfigRules(t *testing.T) {
	cases := []struct {
		name, old, new, field, reason string
		line                          int
	}{
		{"site name", "name: Test site", "name: \"\"", "site.name", "required", 3},
		{"controller", "controller: Test S.r.l.", "controller: \"\"", "site.controller", "titolare", 4},
		{"purposes", "purposes: [asset protection]", "purposes: []", "site.purposes", "G-2c", 5},
		{"gateway", "gateway: gw-1", "gateway: gw/1", "gateway", "MQTT topics", 6},
		{"rtsp listen", "rtsp_listen: 127.0.0.1:18654", "rtsp_listen: nowhere", "outputs.rtsp_listen", "host:port", 8},
		{"rtsp plaintext off loopback", "rtsp_listen: 127.0.0.1:18654", "rtsp_listen: 0.0.0.0:18654", "outputs.rtsp_listen", "rtsp_plaintext_lan", 8},
		{"rtsps without key", "  record_dir: REC\n", "  record_dir: REC\n  rtsps: {listen: \"0.0.0.0:18655\", cert_file: relay.crt}\n", "outputs.rtsps.cert_file", "required with listen", 10},
		{"rtsps same address", "  record_dir: REC\n", "  record_dir: REC\n  rtsps: {listen: \"127.0.0.1:18654\", cert_file: c, key_file: k}\n", "outputs.rtsps.listen", "rtsp_listen too", 10},
		{"rtsps files", "  record_dir: REC\n", "  record_dir: REC\n  rtsps: {listen: \"0.0.0.0:18655\", cert_file: c.pem, key_file: k.pem}\n", "outputs.rtsps.key_file", "no such file", 10},
		{"rtsp per-ip cap over total", "  record_dir: REC\n", "  record_dir: REC\n  rtsp_max_conns_per_ip: 100\n", "outputs.rtsp_max_conns_per_ip", "out of 1..64", 10},
		{"rtsp login timeout", "  record_dir: REC\n", "  record_dir: REC\n  rtsp_login_timeout: 10m\n", "outputs.rtsp_login_timeout", "out of 1s..2m", 10},
		{"camera id", "id: cam2", "id: cam1", "cameras[1].id", "duplicate", 31},
		{"purpose", "purpose: yard", "purpose: \"\"", "cameras[1].purpose", "purpose is required", 32},
		{"match by ip only", "match: {mac: \"02:00:00:00:00:02\"}", "match: {}", "cameras[1].match", "never by IP alone", 33},
		{"bad mac", "\"02:00:00:00:00:02\"", "\"zz\"", "cameras[1].match.mac", "not a MAC", 33},
		{"same device", "match: {mac: \"02:00:00:00:00:02\"}", "match: {serial: S1}", "cameras[1].match", "same device", 33},
		{"xaddr", "xaddr: http://127.0.0.2:8080/onvif/device_service", "xaddr: ftp://x", "cameras[1].xaddr", "not http", 34},
		{"xaddr credentials", "xaddr: http://127.0.0.2:8080/onvif/device_service", "xaddr: http://u:p@127.0.0.2/onvif", "cameras[1].xaddr", "credentials", 34},
		{"password file", "password_file: cam.pw\n", "\n", "cameras[0].password_file", "required with username", 16},
		{"fail mode", "purpose: yard", "purpose: yard\n    fail_mode: raw", "cameras[1].fail_mode", "not blank or drop", 33},
		{"token", "token: \"1\"", "token: \"\"", "cameras[0].presets[0].token", "required", 24},
		{"position", "position: {pan: 0.1, tilt: 0, zoom: 0.2}", "position: {pan: 1.5, tilt: 0, zoom: 0.2}", "cameras[0].presets[0].position", "generic spaces", 25},
		{"tolerance", "tolerance: 0.02", "tolerance: 0.9", "cameras[0].presets[0].tolerance", "out of", 26},
		{"approval", "document: DOC-1", "document: \"\"", "cameras[0].presets[0].approval", "ER-4.7", 27},
		{"approval date", "date: 2026-10-01", "date: yesterday", "cameras[0].presets[0].approval.date", "YYYY-MM-DD", 27},
		{"mask", "{x: 0.3, y: 0.3}]", "{x: 1.3, y: 0.3}]", "cameras[0].presets[0].masks", "outside [0,1]", 28},
		{"fixed mask", "{x: 1, y: 1}, {x: 0, y: 1}]", "{x: 0, y: 1}, {x: 1, y: 1}]", "cameras[1].masks", "self-intersecting", 35},
		{"ER-4.7 fixed camera without approval", "    approval: {by: A. Bianchi, date: 2026-10-02, document: DOC-2}\n", "", "cameras[1].approval", "ER-4.7", 31},
		{"ER-4.7 fixed camera approval without document", "document: DOC-2", "document: \" \"", "cameras[1].approval", "ER-4.7", 39},
		{"ER-4.7 fixed camera approval date", "date: 2026-10-02", "date: 2 Oct", "cameras[1].approval.date", "YYYY-MM-DD", 39},
		{"ER-4.7 camera-wide approval on a PTZ camera", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    approval: {by: A, date: 2026-01-01, document: D}\n", "cameras[0].approval", "per preset", 23},
		{"record dir", "  record_dir: REC\n", "", "outputs.record_dir", "required", 7},
		{"segment", "segment: 30s", "segment: 2s", "cameras[0].record.segment", "out of 10s..1h", 22},
		{"capture read timeout", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    capture: {read_timeout: 100ms}\n", "cameras[0].capture.read_timeout", "out of 500ms..1m", 23},
		{"outputs codec", "  record_dir: REC\n", "  record_dir: REC\n  codec: VP8\n", "outputs.codec", "not H264 or H265", 10},
		{"encoder bitrate ignored", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    encoder: {element: \"openh264enc bitrate=2000000 gop-size={gop}\"}\n", "cameras[0].encoder.element", "bitrate_kbps would be ignored", 23},
		{"encoder gop ignored", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    encoder: {element: \"x264enc bitrate={bitrate}\"}\n", "cameras[0].encoder.element", "no {gop} placeholder", 23},
		{"encoder unit unknown", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    encoder: {element: \"myenc rate={bitrate} g={gop}\"}\n", "cameras[0].encoder.element", "{bitrate_bps} (bit/s)", 23},
		{"encoder of the other codec", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    encoder: {element: \"x265enc bitrate={bitrate} key-int-max={gop}\"}\n", "cameras[0].encoder.element", "encodes H265", 23},
		{"capture open timeout", "    record: {enabled: true, segment: 30s}\n", "    record: {enabled: true, segment: 30s}\n    capture: {open_timeout: 1h}\n", "cameras[0].capture.open_timeout", "out of 1s..2m", 23},
		{"G-3.4 retention over 24h without reason", "segment: 30s", "segment: 30s, retention: 72h", "cameras[0].record.retention_reason", "over 24h", 22},
		{"G-3.4 retention over 7d without prior check", "segment: 30s", "segment: 30s, retention: 200h, retention_reason: bank", "cameras[0].record.retention", "prior_check_ref", 22},
		{"G-3.4 retention too short", "segment: 30s", "segment: 30s, retention: 10m", "cameras[0].record.retention", "below", 22},
		{"G-4.6 audit keep under six months", "gateway: gw-1", "gateway: gw-1\naudit: {keep: 720h}", "audit.keep", "six months", 7},
		{"G-4.3 schedule without time zone", "segment: 30s}", "segment: 30s}\n    schedule: {weekly: {mon: [\"08:00-18:00\"]}}", "cameras[0].schedule", "timezone", 23},
		{"operator camera", "cameras: [cam1]", "cameras: [cam9]", "operators[0].cameras[0]", "no camera", 14},
		{"site id", "id: test-site", "id: \"a b\"", "site.id", "MQTT topics", 2},
		{"no roles", "    roles: [live-viewer]\n", "", "operators[0].roles", "at least one", 11},
		{"unknown role", "roles: [live-viewer]", "roles: [live-viewer, boss]", "operators[0].roles[1]", "unknown role", 13},
		{"G-3.3.1 d maintainer who also watches", "roles: [live-viewer]", "roles: [live-viewer, ptz-maintainer]", "operators[0].roles", "both move cameras (preset-apply) and show video (live-view)", 13},
		{"G-3.3.1 a admin without a reason", "roles: [live-viewer]", "roles: [admin]", "operators[0].roles", "combined_roles_reason", 13},
		{"G-3.3.2 two operators, one password file", "    cameras: [cam1]\ncameras:", "    cameras: [cam1]\n  - {name: ops2, password_file: ./ops.pw, roles: [live-viewer]}\ncameras:", "operators[1].password_file", "is also operators[0].password_file", 15},
		{"G-3.3.2 operator with a camera's password file", "password_file: ops.pw", "password_file: cam.pw", "operators[0].password_file", "is also cameras[0].password_file", 12},
		{"embedded not loopback", "gateway: gw-1", "gateway: gw-1\nbroker: {embedded_listen: \"0.0.0.0:1883\"}", "broker.embedded_listen", "loopback", 7},
		{"broker scheme", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"http://b:1883\"}", "broker.url", "scheme", 7},
		{"plaintext with tls", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"tcp://b:1883\", ca_file: ca.pem}", "broker.url", "plaintext is refused", 7},
		{"cert without key", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"mqtts://b:8883\", cert_file: c.pem}", "broker.cert_file", "go together", 7},
		{"broker user", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"mqtts://b:8883\", username: gw}", "broker.password_file", "required with username", 7},
		{"broker url creds", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"mqtt://u:secret@b:1883\"}", "broker.url", "not in the URL", 7},
		{"tls without url", "gateway: gw-1", "gateway: gw-1\nbroker: {ca_file: ca.pem}", "broker.url", "required when", 7},
		{"keepalive", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"tcp://b:1883\", keepalive: 1s}", "broker.keepalive", "out of", 7},
		{"outbox cap", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"tcp://b:1883\", outbox_max_mb: -1}", "broker.outbox_max_mb", "out of", 7},
		{"discovery targets", "gateway: gw-1", "gateway: gw-1\ndiscovery: {enabled: true}", "discovery", "without multicast or unicast", 7},
		{"discovery interval", "gateway: gw-1", "gateway: gw-1\ndiscovery: {enabled: true, multicast: true, interval: 1s}", "discovery.interval", "out of 30s..24h", 7},
		{"unknown field", "gateway: gw-1", "gateway: gw-1\ncolour: red", "", "field colour not found", 7},
		{"ER-3.2 lock interval", "record: {enabled: true, segment: 30s}", "record: {enabled: true, segment: 30s}\n    ptz_lock: {interval: 1m}", "cameras[0].ptz_lock.interval", "out of 100ms..2s (ER-3.2)", 23},
		{"G-3.3.1 f plaintext broker off host", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"tcp://10.0.0.5:1883\"}", "broker.url", "plaintext to another host", 7},
		{"G-3.3.1 f plaintext broker by name", "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"mqtt://mqtt.example.net:1883\"}", "broker.url", "use mqtts://", 7},
		{"G-4.1-rooms location", "    purpose: entrance\n", "    purpose: entrance\n    location: bagno del piano terra\n", "cameras[0].location", "no camera may film there (G-4.1-rooms, ER-3.1)", 18},
		{"G-4.1-rooms purpose", "purpose: entrance", "purpose: changing room watch", "cameras[0].purpose", "no camera may film there", 17},
		{"L300-4 workers without authorisation", "    purpose: entrance\n", "    purpose: entrance\n    workers: {filmed: true}\n", "cameras[0].workers.authorisation", "films workers", 18},
		{"L300-4 workers without reference", "    purpose: entrance\n", "    purpose: entrance\n    workers: {filmed: true, authorisation: union-agreement}\n", "cameras[0].workers.reference", "reference is required (L300-4)", 18},
		{"stats interval", "gateway: gw-1", "gateway: gw-1\ntelemetry: {stats_interval: 1s}", "telemetry.stats_interval", "out of 5s..10m0s", 7},
		{"metrics listen", "gateway: gw-1", "gateway: gw-1\nmetrics: {listen: nowhere}", "metrics.listen", "not host:port", 7},
		{"metrics off loopback", "gateway: gw-1", "gateway: gw-1\nmetrics: {listen: \"0.0.0.0:9464\"}", "metrics.listen", "metrics.lan: true", 7},
		{"L300-4 authorisation without filming", "    purpose: entrance\n", "    purpose: entrance\n    workers: {filmed: false, reference: X}\n", "cameras[0].workers", "set filmed: true", 18},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(testkit.SiteYAML, tc.old) {
				t.Fatalf("test bug: %q not in config", tc.old)
			}
			p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, tc.old, tc.new, 1))
			_, err := Load(p)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			want := []string{p, tc.reason}
			if tc.field != "" {
				want = append(want, tc.field+":", ":"+itoa(tc.line)+":")
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

// Plaintext RTSP off loopback loads only when the config says so, and then
// with a warning; RTSPS loads its certificate and key.
func TestRTSPOutputs(t *testing.T) {
	p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "rtsp_listen: 127.0.0.1:18654", "rtsp_listen: 0.0.0.0:18654\n  rtsp_plaintext_lan: true", 1))
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "outputs.rtsp_plaintext_lan: the relay serves plaintext RTSP on 0.0.0.0:18654") {
		t.Fatalf("warnings: %q", c.Warnings)
	}
	pki := testkit.NewPKI(t, "relay-ca")
	crt := pki.Issue(t, "relay", true)
	p = testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "  record_dir: REC\n",
		"  record_dir: REC\n  rtsps: {listen: \"0.0.0.0:18655\", cert_file: "+crt.CertFile+", key_file: "+crt.KeyFile+"}\n", 1))
	if c, err = Load(p); err != nil {
		t.Fatal(err)
	}
	if tc, err := c.RTSPSTLS(); err != nil || tc == nil || len(tc.Certificates) != 1 {
		t.Fatalf("RTSPSTLS: %v %v", tc, err)
	}
	if c.Outputs.RTSPMaxConns != DefaultRTSPMaxConns || c.Outputs.RTSPMaxConnsPerIP != DefaultRTSPMaxConnsPerIP {
		t.Fatalf("limits not defaulted: %+v", c.Outputs)
	}
}

func TestConfigRefusesReadablePasswordFile(t *testing.T) {
	p := testkit.WriteSite(t, testkit.SiteYAML)
	if err := os.Chmod(filepath.Join(filepath.Dir(p), "cam.pw"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "cam-secret") {
		t.Fatalf("err = %v", err)
	}
}

// The demo config is valid. Git does not keep file modes, so the demo's
// password files are copied with mode 0600 first (run.sh chmods them too).
func TestDemoConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	files, _ := filepath.Glob("../../deploy/demo/*")
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue // the references: not read by Load
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(filepath.Join(dir, "site.yaml")); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	s := ""
	if i == 0 {
		return "0"
	}
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

// G-3.3.1 e: a camera still on a factory-default password is refused (the
// message names the file's field and the user, never the password); a
// camera with no credentials at all is a warning.
func TestG331e_CameraCredentials(t *testing.T) {
	for _, def := range [][2]string{{"admin", "12345"}, {"Admin", "admin"}, {"root", "pass"}, {"888888", "888888"}} {
		text := strings.Replace(testkit.SiteYAML, "    username: u\n", "    username: "+def[0]+"\n", 1)
		p := testkit.WriteSite(t, text)
		testkit.SecretFile(t, filepath.Dir(p), "cam.pw", def[1]+"\n")
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), "cameras[0].password_file") || !strings.Contains(err.Error(), "factory-default") {
			t.Errorf("%s/%s: %v", def[0], def[1], err)
		} else if strings.Contains(err.Error(), "\""+def[1]+"\"") && def[1] != def[0] {
			t.Errorf("the password is in the error: %v", err)
		}
	}
	cfg, err := Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cfg.Warnings, func(w string) bool {
		return strings.HasPrefix(w, "cameras[1].username: camera \"cam2\": no credentials")
	}) {
		t.Errorf("no warning for a camera without credentials: %v", cfg.Warnings)
	}
}

// G-3.3.1 f: plaintext MQTT to another host is refused unless the config
// says the network is closed (broker.plaintext_lan), which the dossier
// then lists; loopback stays allowed.
func TestG331f_PlaintextBrokerIsAnExplicitChoice(t *testing.T) {
	for url, ok := range map[string]bool{"tcp://127.0.0.1:1883": true, "mqtt://localhost:1883": true, "mqtts://b.example:8883": true, "tcp://b.example:1883": false} {
		text := strings.Replace(testkit.SiteYAML, "gateway: gw-1", "gateway: gw-1\nbroker: {url: \""+url+"\"}", 1)
		_, err := Load(testkit.WriteSite(t, text))
		if (err == nil) != ok {
			t.Errorf("%s: %v", url, err)
		}
	}
	text := strings.Replace(testkit.SiteYAML, "gateway: gw-1", "gateway: gw-1\nbroker: {url: \"tcp://b.example:1883\", plaintext_lan: true}", 1)
	cfg, err := Load(testkit.WriteSite(t, text))
	if err != nil || !cfg.PlaintextBrokerOffHost() {
		t.Fatalf("plaintext_lan: %v", err)
	}
}

// /metrics: on loopback by default, off with "off" or "", off loopback
// only with metrics.lan (and a warning).
func TestMetricsListen(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"", DefaultMetricsListen},
		{"\nmetrics: {listen: \"off\"}", ""},
		{"\nmetrics: {listen: \"\"}", ""},
		{"\nmetrics: {listen: \"0.0.0.0:9464\", lan: true}", "0.0.0.0:9464"},
	} {
		c, err := Load(testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "gateway: gw-1", "gateway: gw-1"+tc.yaml, 1)))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.MetricsListen(); got != tc.want {
			t.Errorf("%q: listen %q, want %q", tc.yaml, got, tc.want)
		}
		if time.Duration(c.Telemetry.StatsInterval) != DefaultStatsInterval {
			t.Errorf("stats interval %v", c.Telemetry.StatsInterval)
		}
		if lan := slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.HasPrefix(w, "metrics.lan") }); lan != strings.Contains(tc.yaml, "lan: true") {
			t.Errorf("%q: warnings %v", tc.yaml, c.Warnings)
		}
	}
}

// A relative recording_socket is resolved against the config's folder:
// the 100-byte limit applies to the path the socket is made at.
func TestRecordingSocketLimitOnResolvedPath(t *testing.T) {
	rel := strings.Repeat("s", 90) + ".sock" // 95 bytes: fits alone, not once joined
	p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "  record_dir: REC\n",
		"  record_dir: REC\n  recording_socket: "+rel+"\n", 1))
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "outputs.recording_socket") || !strings.Contains(err.Error(), "at most 100 bytes") {
		t.Fatalf("a %d-byte resolved socket path: err = %v", len(filepath.Join(filepath.Dir(p), rel)), err)
	}
	p = testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "  record_dir: REC\n",
		"  record_dir: REC\n  recording_socket: r.sock\n", 1))
	if c, err := Load(p); err != nil || c.Outputs.RecordingSocket != filepath.Join(filepath.Dir(p), "r.sock") {
		t.Fatalf("short relative socket: %v", err)
	}
}

// A login naming an unknown operator takes about as long as a wrong
// password for a known one (the key derivation runs for both), so
// operator names cannot be found by timing the console or the recordings
// socket. A ratio in one run, with a wide margin for a loaded machine.
func TestUnknownOperatorNotAnsweredFaster(t *testing.T) {
	cfg, err := Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	timed := func(name string) time.Duration {
		best := time.Hour
		for i := range 2 {
			t0 := time.Now()
			if _, err := cfg.Authenticate(name, fmt.Sprintf("wrong-%d-%d", i, time.Now().UnixNano())); err == nil {
				t.Fatal("a wrong password authenticated")
			}
			best = min(best, time.Since(t0))
		}
		return best
	}
	known, unknown := timed("ops"), timed("nobody-by-this-name")
	t.Logf("FIGURES authentication refused: known operator %v, unknown %v", known, unknown)
	if unknown < known/4 {
		t.Errorf("an unknown operator is refused in %v, a known one in %v: names can be found by timing", unknown, known)
	}
}
