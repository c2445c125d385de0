package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"
)

func msg(t *testing.T, seq uint64, body map[string]any) []byte {
	t.Helper()
	m := map[string]any{"seq": seq, "time": time.Now().UTC()}
	for k, v := range body {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A flood of made-up gateways and cameras is bounded by the limits and
// counted; names that are not IDs, and payloads naming another gateway
// than their topic, are refused.
func TestStateLimitsAndBadInput(t *testing.T) {
	s := NewState(Limits{MaxGateways: 2, MaxCameras: 3}, zerolog.Nop())
	now := time.Now()
	for i := range 5 {
		s.Handle(fmt.Sprintf("velo/s/gw%d/status", i), msg(t, 1, map[string]any{"state": "online"}), now)
	}
	for i := range 5 {
		s.Handle(fmt.Sprintf("velo/s/gw0/cameras/c%d/state", i), msg(t, uint64(2+i), map[string]any{"status": "streaming"}), now)
	}
	g, c := s.Tracked()
	cnt := s.Counts()
	if g != 2 || c != 3 || cnt.RefusedGW != 3 || cnt.RefusedCam != 2 {
		t.Errorf("tracked %d gateways, %d cameras, refused %d/%d; want 2, 3, 3/2", g, c, cnt.RefusedGW, cnt.RefusedCam)
	}
	for _, bad := range []struct{ topic, payload string }{
		{"velo/s/gw 1/status", `{"seq":1,"state":"online"}`},
		{"velo/s/" + strings.Repeat("g", 65) + "/status", `{"seq":1,"state":"online"}`},
		{"velo/s/gw0/status", `{"seq":9,"state":"online","gateway":"gw1"}`},
		{"velo/s/gw0/status", `{"state":"online"}`},
		{"velo/s/gw0/status", `not json`},
		{"velo/s/gw0/status", `{"seq":10,"state":"rebooting"}`},
	} {
		before := s.Counts().Invalid
		s.Handle(bad.topic, []byte(bad.payload), now)
		if s.Counts().Invalid != before+1 {
			t.Errorf("%s %s: not counted invalid", bad.topic, bad.payload)
		}
	}
	if g, _ := s.Tracked(); g != 2 {
		t.Errorf("bad input created gateways: %d", g)
	}
}

// The audit chain: a rising audit_seq under the pinned key is fine; a
// lower seq, another hash at the same seq, or another key is an incident.
func TestAuditChainIncidents(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seq       uint64
		hash, key string
		incident  string
	}{
		{"rising", 41, hash2, keyA, ""},
		{"same head again", 40, hash1, keyA, ""},
		{"rewound", 39, hash2, keyA, "rewound from seq 40 to 39"},
		{"forked", 40, hash2, keyA, "forked at seq 40"},
		{"key changed", 41, hash2, keyB, "audit key changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a auditChain
			now := time.Now()
			if got := a.check(40, hash1, keyA, now); got != "" {
				t.Fatalf("first head: %q", got)
			}
			got := a.check(tc.seq, tc.hash, tc.key, now.Add(time.Minute))
			if (tc.incident == "") != (got == "") || !strings.Contains(got, tc.incident) {
				t.Errorf("incident %q, want %q", got, tc.incident)
			}
		})
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"listen: 127.0.0.1:1\n", "broker.url: required"},
		{"broker: {url: http://x:1}\n", `scheme "http"`},
		{"broker: {url: 'tcp://u:p@x:1'}\n", "credentials in the URL are refused"},
		{"broker: {url: tcp://x:1, ca_file: ca.pem}\n", "plaintext"},
		{"broker: {url: mqtts://x:1, cert_file: c.pem}\n", "give both or neither"},
		{"broker: {url: tcp://x:1, password_file: pw}\n", "broker.username: required"},
		{"broker: {url: tcp://x:1}\nshare_group: 'a/b'\n", "share_group"},
		{"broker: {url: tcp://x:1}\nthresholds: {tamper_window: soon}\n", "not a duration"},
		{"broker: {url: tcp://x:1}\nbrokr: {}\n", "field brokr not found"},
		{"broker: {url: tcp://x:1, username: u, password_file: missing}\n", "broker.password_file"},
	} {
		p := filepath.Join(dir, "fleet.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want the file and %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p@") {
			t.Errorf("the error shows the URL's credentials: %v", err)
		}
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ok.yaml")
	_ = os.WriteFile(p, []byte("broker: {url: tcp://x:1, username: u, password_file: pw}\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "broker.password_file") {
		t.Errorf("a password file readable by others: %v, want refused", err)
	}
	_ = os.Chmod(pw, 0o600)
	c, err := Load(p)
	if err != nil || c.Broker.password != "s3cret" || c.Listen != DefaultListen {
		t.Fatalf("valid config: %v", err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", c, c), "s3cret") {
		t.Error("the config prints its password")
	}
}

// The example fleet.yaml in docs/fleet.md decodes strictly and validates.
func TestDocsExampleConfig(t *testing.T) {
	raw, err := os.ReadFile("../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "```yaml\nbroker:")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/fleet.md has no ```yaml block starting with broker:")
	}
	dec := yaml.NewDecoder(strings.NewReader("broker:" + block))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docs/fleet.md example: %v", err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil || c.ShareGroup != "velo-ops" || c.Thresholds.TamperWindow.D() != time.Hour {
		t.Fatalf("docs/fleet.md example: %v (%+v)", err, c)
	}
}

// A gateway reinstalled (its seq starts again from 1) is taken back by a
// birth made well after its last status; an old birth redelivered is
// still a duplicate; the new audit key is an incident.
func TestSeqResetByANewBirth(t *testing.T) {
	s := NewState(Limits{MaxGateways: 10, MaxCameras: 10}, zerolog.Nop())
	t0 := time.Now().Add(-time.Hour)
	at := func(seq uint64, when time.Time, body map[string]any) []byte {
		body["seq"], body["time"] = seq, when
		b, _ := json.Marshal(body)
		return b
	}
	now := time.Now()
	s.Handle("velo/s/gw/status", at(5000, t0, map[string]any{"state": "online"}), now)
	s.Handle("velo/s/gw/events", at(5001, t0, map[string]any{"kind": "audit_head", "audit_seq": 9, "audit_hash": hash1, "audit_key": keyA}), now)
	if s.Handle("velo/s/gw/status", at(4000, t0.Add(-time.Hour), map[string]any{"state": "online"}), now) {
		t.Error("an old birth redelivered was taken")
	}
	if s.Handle("velo/s/gw/events", at(3, t0.Add(time.Hour), map[string]any{"kind": "config_applied"}), now) {
		t.Error("an event below the last seq was taken without a new birth")
	}
	if !s.Handle("velo/s/gw/status", at(1, t0.Add(time.Hour), map[string]any{"state": "online"}), now) {
		t.Fatal("the reinstalled gateway's birth was dropped")
	}
	if !s.Handle("velo/s/gw/events", at(2, t0.Add(time.Hour), map[string]any{"kind": "audit_head", "audit_seq": 1, "audit_hash": hash2, "audit_key": keyB}), now) {
		t.Fatal("the reinstalled gateway's event was dropped")
	}
	r := s.Gateways()[0]
	if r.SeqResets != 1 || r.Incidents != 1 || r.LastEventSeq != 2 {
		t.Errorf("after the reset: %+v, want 1 reset, 1 audit incident (new key), last event seq 2", r)
	}
}

// Invented camera ids cost nothing once refused: a refused camera's seq
// is not kept, and a removed camera's seq is forgotten (memory bounded).
func TestRefusedAndRemovedCamerasKeepNoSeq(t *testing.T) {
	s := NewState(Limits{MaxGateways: 2, MaxCameras: 2}, zerolog.Nop())
	now := time.Now()
	s.Handle("velo/s/gw0/status", msg(t, 1, map[string]any{"state": "online"}), now)
	for i := range 1000 {
		s.Handle(fmt.Sprintf("velo/s/gw0/cameras/c%d/state", i), msg(t, uint64(2+i), map[string]any{"status": "streaming"}), now)
	}
	s.Handle("velo/s/gw0/cameras/c0/state", nil, now) // removed
	g := s.gateways[gwKey{"s", "gw0"}]
	if _, c := s.Tracked(); c != 1 || len(g.seq) != 2 { // status and cam/c1
		t.Errorf("%d cameras tracked, %d seq entries; want 1 and 2", c, len(g.seq))
	}
	if s.Counts().RefusedCam != 998 {
		t.Errorf("refused %d cameras, want 998", s.Counts().RefusedCam)
	}
}

// One gateway identity cannot take the fleet-wide limits: its cameras are
// capped, and its name is pinned to the first site id it was seen under.
func TestOneGatewaysShareIsBounded(t *testing.T) {
	s := NewState(Limits{MaxCamerasPerGateway: 3}, zerolog.Nop())
	now := time.Now()
	for i := range 10 {
		s.Handle(fmt.Sprintf("velo/s/gw0/cameras/c%d/state", i), msg(t, uint64(1+i), map[string]any{"status": "streaming"}), now)
		s.Handle("velo/s/gw0/events", msg(t, uint64(20+i), map[string]any{"kind": "video_lost", "camera": fmt.Sprintf("e%d", i)}), now)
	}
	for i := range 10 {
		s.Handle(fmt.Sprintf("velo/site%d/gw0/status", i), msg(t, 1, map[string]any{"state": "online"}), now)
	}
	s.Handle("velo/other/gw1/cameras/c0/state", msg(t, 1, map[string]any{"status": "streaming"}), now)
	g, c := s.Tracked()
	cnt := s.Counts()
	if g != 2 || c != 4 || cnt.RefusedGWCam != 17 || cnt.RefusedGWSite != 10 {
		t.Errorf("tracked %d gateways, %d cameras; refused %d cameras, %d sites; want 2, 4, 17, 10", g, c, cnt.RefusedGWCam, cnt.RefusedGWSite)
	}
	s = NewState(Limits{MaxSitesPerGateway: 2}, zerolog.Nop())
	for i := range 3 {
		s.Handle(fmt.Sprintf("velo/site%d/gw0/status", i), msg(t, 1, map[string]any{"state": "online"}), now)
	}
	if g, _ := s.Tracked(); g != 2 || s.Counts().RefusedGWSite != 1 {
		t.Errorf("max_sites_per_gateway 2: %d tracked, %d refused", g, s.Counts().RefusedGWSite)
	}
}

// A hostile gateway's messages cannot swell the fleet: a payload over
// MaxPayload is dropped unread, a stats message listing thousands of
// cameras keeps the gateway's share, the strings kept are cut, and an
// audit head whose hash or key is not 64 hex digits pins nothing.
func TestHostileGatewayMessagesAreBounded(t *testing.T) {
	s := NewState(Limits{MaxCamerasPerGateway: 4}, zerolog.Nop())
	now := time.Now()
	huge := append([]byte(`{"seq":1,"state":"offline","reason":"`), strings.Repeat("r", MaxPayload)...)
	huge = append(huge, `"}`...)
	before := s.Counts().Invalid
	if s.Handle("velo/s/gw/status", huge, now) || s.Counts().Invalid != before+1 {
		t.Error("a payload over MaxPayload was taken")
	}
	s.Handle("velo/s/gw/status", msg(t, 2, map[string]any{"state": "offline", "reason": strings.Repeat("é", 10000)}), now)
	cams := make([]map[string]any, 500)
	for i := range cams {
		cams[i] = map[string]any{"id": fmt.Sprintf("c%d", i), "status": strings.Repeat("s", 300)}
	}
	s.Handle("velo/s/gw/stats", msg(t, 3, map[string]any{"cameras": cams}), now)
	if _, c := s.Tracked(); c != 4 {
		t.Errorf("%d cameras tracked from one stats message; the gateway's share is 4", c)
	}
	for _, f := range s.Attention(now.Add(time.Hour), Thresholds{}, Filter{}) {
		if len(f.Detail) > 2*maxText+64 || !utf8.ValidString(f.Detail) {
			t.Errorf("finding kept %d bytes (valid UTF-8 %v): %.80s…", len(f.Detail), utf8.ValidString(f.Detail), f.Detail)
		}
	}
	for i, head := range []map[string]any{
		{"kind": "audit_head", "audit_seq": 1, "audit_hash": "x", "audit_key": keyA},
		{"kind": "audit_head", "audit_seq": 1, "audit_hash": hash1, "audit_key": strings.Repeat("k", 100)},
	} {
		before := s.Counts().Invalid
		s.Handle("velo/s/gw/events", msg(t, uint64(10+i), head), now)
		if s.Counts().Invalid != before+1 {
			t.Errorf("audit head %d with a bad hash or key not refused", i)
		}
	}
	if gws := s.Gateways(); len(gws) != 1 || gws[0].AuditKey != "" {
		t.Errorf("a malformed audit head was pinned: %+v", gws)
	}
}
