package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/commands"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"velo/onvif/camsim"
)

// signedCommand builds a command payload signed with secret.
func signedCommand(secret, site, gateway, verb, operator, id string, args any, issued, expires time.Time) []byte {
	c := commands.Command{RequestID: id, Operator: operator, Gateway: gateway,
		IssuedAt: issued.UTC().Format(time.RFC3339Nano), ExpiresAt: expires.UTC().Format(time.RFC3339Nano)}
	if args != nil {
		c.Args, _ = json.Marshal(args)
	}
	commands.Sign(secret, site, verb, &c)
	b, _ := json.Marshal(c)
	return b
}

// fileLine is the first line of a file in dir.
func fileLine(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

const agentMQTTConfig = `site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker:
  url: %s
  username: gw
  password_file: broker.pw
  ack_timeout: 5s
  backoff_max: 2s
outputs: {rtsp_listen: "127.0.0.1:%d"}
telemetry: {stats_interval: 5s}
metrics: {listen: "off"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [p]}
  - {name: maint, password_file: maint.pw, roles: [ptz-maintainer], cameras: [p]}
  - {name: admin, password_file: admin.pw, roles: [admin], cameras: [p], combined_roles_reason: site owner}
cameras:
  - id: p
    purpose: entrance
    match: {serial: SER-P}
    xaddr: %s
    username: velo
    password_file: cam.pw
    ptz_lock: {interval: %s}
    presets:
      - token: "1"
        position: {pan: 0, tilt: 0, zoom: 0}
        approval: {by: A, date: 2026-01-01, document: D1}
      - token: "2"
        position: {pan: 0.15, tilt: 0.1, zoom: 0.5}
        approval: {by: A, date: 2026-01-02, document: D2}
`

// The agent against a real Mosquitto with password auth and a per-gateway
// ACL: retained birth and camera state, events, and commands (authorised,
// wrong role, unapproved preset, replayed, expired, duplicate delivery,
// forged, cross-gateway), and config/reload good and bad. No secret in any
// MQTT payload.
func TestAgentOverMosquitto(t *testing.T) {
	secrets := map[string]string{"broker.pw": "broker-secret-1", "ops.pw": "ops-secret-2", "maint.pw": "maint-secret-3", "admin.pw": "admin-secret-4", "cam.pw": "cam-secret-5"}
	b := testkit.StartMosquitto(t, testkit.MosquittoOptions{Users: map[string]string{"gw": secrets["broker.pw"], "central": "central-pw"},
		ACL: "pattern readwrite velo/+/%u/#\nuser central\ntopic readwrite velo/#\n"})
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "p", Address: "127.0.96.1", Username: "velo", Password: secrets["cam.pw"], Serial: "SER-P", Scene: "ptz",
		FPS: 10, Width: 320, Height: 180, PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{
			{Token: "1", Name: "home"}, {Token: "2", Name: "door", Pan: 0.15, Tilt: 0.1, Zoom: 0.5}, {Token: "3", Name: "street", Pan: -0.6, Tilt: -0.2}}}})
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for n, s := range secrets {
		if op, ok := strings.CutSuffix(n, ".pw"); ok && op != "broker" && op != "cam" {
			// The gateway keeps the operator's credential line; commands
			// are signed with the password.
			s = access.HashCredential("t", op, s, 1, time.Now().Add(time.Hour))
		}
		write(n, s+"\n")
	}
	cfgText := fmt.Sprintf(agentMQTTConfig, b.URL(false), testkit.FreePort(t), sim.Camera("p").XAddr(), "200ms")
	write("site.yaml", cfgText)
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	col := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false), Username: "central", Password: "central-pw"}, "velo/#")
	var logs strings.Builder
	a := New(cfg, zerolog.New(&syncWriter{b: &logs}), Options{Version: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	root := "velo/t/gw/"
	online := col.Wait(t, 20*time.Second, "retained online status", func(m testkit.Message) bool {
		return m.Topic == root+"status" && testkit.Field(m, "state") == "online"
	})
	col.Wait(t, 40*time.Second, "camera state streaming", func(m testkit.Message) bool {
		return m.Topic == root+"cameras/p/state" && testkit.Field(m, "status") == "streaming" && testkit.Field(m, "preset") == "1"
	})
	col.Wait(t, 10*time.Second, "limits_set event", func(m testkit.Message) bool {
		return m.Topic == root+"events" && testkit.Field(m, "kind") == "limits_set"
	})
	// A late subscriber gets the retained status and state at once.
	late := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false), Username: "central", Password: "central-pw"}, root+"#")
	late.Wait(t, 5*time.Second, "retained status", func(m testkit.Message) bool { return m.Topic == root+"status" && m.Retained && m.Seq >= online.Seq })
	late.Wait(t, 5*time.Second, "retained state", func(m testkit.Message) bool { return m.Topic == root+"cameras/p/state" && m.Retained })
	steadyStateNotRewritten(t, col, root)

	pub := func(verb string, payload []byte) {
		t.Helper()
		tok := col.Client().Publish(root+"cmd/"+verb, 1, false, payload)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish command: %v", tok.Error())
		}
	}
	reply := func(id string) testkit.Message {
		t.Helper()
		return col.Wait(t, 60*time.Second, "reply to "+id, func(m testkit.Message) bool {
			return strings.HasSuffix(m.Topic, "/reply") && testkit.Field(m, "request_id") == id
		})
	}
	now := time.Now()
	exp := now.Add(5 * time.Minute)
	cmd := func(op, id, verb string, args any) []byte {
		return signedCommand(secrets[op+".pw"], "t", "gw", verb, op, id, args, now, exp)
	}
	apply := func(preset string) map[string]string { return map[string]string{"camera": "p", "preset": preset} }

	cases := []struct {
		name, id, verb string
		payload        []byte
		status, reason string
	}{
		{"wrong role", "r1", "preset/apply", cmd("ops", "r1", "preset/apply", apply("2")), "refused", "no role allowed"},
		{"unapproved preset", "r2", "preset/apply", cmd("maint", "r2", "preset/apply", apply("3")), "refused", "not approved"},
		{"forged signature", "r3", "preset/apply", signedCommand("guess", "t", "gw", "preset/apply", "maint", "r3", apply("2"), now, exp), "", ""},
		{"signed with the gateway's credential file", "r3f", "preset/apply", signedCommand(fileLine(t, dir, "maint.pw"), "t", "gw", "preset/apply", "maint", "r3f", apply("2"), now, exp), "", ""},
		{"other gateway", "r4", "preset/apply", signedCommand(secrets["maint.pw"], "t", "gw2", "preset/apply", "maint", "r4", apply("2"), now, exp), "", ""},
		{"expired", "r5", "preset/apply", signedCommand(secrets["maint.pw"], "t", "gw", "preset/apply", "maint", "r5", apply("2"), now.Add(-10*time.Minute), now.Add(-time.Minute)), "refused", "expired"},
		{"too long", "r6", "preset/apply", signedCommand(secrets["maint.pw"], "t", "gw", "preset/apply", "maint", "r6", apply("2"), now, now.Add(time.Hour)), "", ""},
		{"other camera", "r7", "preset/apply", cmd("maint", "r7", "preset/apply", map[string]string{"camera": "q", "preset": "1"}), "refused", "not assigned"},
		{"authorised", "r8", "preset/apply", cmd("maint", "r8", "preset/apply", apply("2")), "ok", ""},
		{"replayed", "r8", "preset/apply", cmd("maint", "r8", "preset/apply", apply("2")), "duplicate", ""},
		{"maint reload", "r9", "config/reload", cmd("maint", "r9", "config/reload", nil), "refused", "no role"},
	}
	for _, tc := range cases {
		pub(tc.verb, tc.payload)
		var r testkit.Message
		if tc.status == "" {
			continue // no valid signature for this gateway: refused before the queue, no reply (checked below)
		}
		if tc.status == "duplicate" {
			r = col.Wait(t, 30*time.Second, "duplicate reply", func(m testkit.Message) bool {
				return strings.HasSuffix(m.Topic, "/reply") && testkit.Field(m, "request_id") == tc.id && testkit.Field(m, "status") == "duplicate"
			})
		} else {
			r = reply(tc.id)
		}
		if testkit.Field(r, "status") != tc.status || !strings.Contains(testkit.Field(r, "reason"), tc.reason) {
			t.Errorf("%s: reply %s", tc.name, r.Payload)
		}
		t.Logf("%s: reply %s", tc.name, r.Payload)
	}
	for _, m := range col.All() {
		if id := testkit.Field(m, "request_id"); strings.HasSuffix(m.Topic, "/reply") && (id == "r3" || id == "r4" || id == "r6") {
			t.Errorf("a command without a valid signature for this gateway was answered: %s", m.Payload)
		}
	}
	col.Wait(t, 10*time.Second, "state on preset 2", func(m testkit.Message) bool {
		return m.Topic == root+"cameras/p/state" && testkit.Field(m, "preset") == "2" && testkit.Field(m, "status") == "streaming"
	})
	if pos, _ := a.State("p"); pos.Position == nil || pos.Position.Zoom < 0.45 {
		t.Errorf("camera not at preset 2: %+v", pos.Position)
	}
	// QoS 1 duplicate delivery: the same message twice, executed once.
	dup := cmd("maint", "r10", "preset/apply", apply("1"))
	pub("preset/apply", dup)
	pub("preset/apply", dup)
	col.Wait(t, 60*time.Second, "second delivery answered", func(m testkit.Message) bool {
		return strings.HasSuffix(m.Topic, "/reply") && testkit.Field(m, "request_id") == "r10" && testkit.Field(m, "status") == "duplicate"
	})
	executed := map[string]int{}
	for _, ev := range a.Events() {
		if ev.Kind == event.CommandExecuted {
			executed[ev.RequestID]++
		}
	}
	if executed["r8"] != 1 || executed["r10"] != 1 || len(executed) != 2 {
		t.Errorf("executions per request id: %v (want r8 and r10 once each)", executed)
	}

	// Reload: a broken file is refused and the camera keeps streaming; a
	// good change restarts only what changed.
	write("site.yaml", strings.Replace(cfgText, "purpose: entrance", "purpose: [", 1))
	pub("config/reload", cmd("admin", "r11", "config/reload", nil))
	if r := reply("r11"); testkit.Field(r, "status") != "failed" || !strings.Contains(testkit.Field(r, "reason"), "site.yaml") {
		t.Errorf("bad reload reply %s", r.Payload)
	}
	col.Wait(t, 10*time.Second, "config_rejected event", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "config_rejected" })
	if s, _ := a.State("p"); s.Status != "streaming" {
		t.Errorf("camera after a rejected reload: %+v", s)
	}
	write("site.yaml", fmt.Sprintf(agentMQTTConfig, b.URL(false), 0, sim.Camera("p").XAddr(), "300ms"))
	// outputs changed too (port 0): needs a restart, refused.
	pub("config/reload", cmd("admin", "r12", "config/reload", nil))
	if r := reply("r12"); testkit.Field(r, "status") != "failed" || !strings.Contains(testkit.Field(r, "reason"), "outputs changed") {
		t.Errorf("restart-needing reload reply %s", r.Payload)
	}
	write("site.yaml", strings.Replace(cfgText, "interval: 200ms", "interval: 300ms", 1))
	pub("config/reload", cmd("admin", "r13", "config/reload", nil))
	r13 := reply("r13")
	if testkit.Field(r13, "status") != "ok" || !strings.Contains(testkit.Field(r13, "result"), `"restarted":["p"]`) {
		t.Errorf("good reload reply %s", r13.Payload)
	}
	if got := a.Config().Camera("p").PTZLock.Interval; time.Duration(got) != 300*time.Millisecond {
		t.Errorf("interval after reload %v", time.Duration(got))
	}
	applied := col.Wait(t, 10*time.Second, "config_applied event", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "config_applied" })
	// Wait for the limits too: a move racing SetConfiguration is clamped
	// by the new limits (as cameras do), which would hide the tamper.
	col.Wait(t, 40*time.Second, "camera locked and limited again after the reload", func(m testkit.Message) bool {
		return m.Topic == root+"events" && testkit.Field(m, "kind") == "limits_set" && m.Seq > applied.Seq
	})

	// Tamper: drift then snap_back on MQTT.
	sim.Camera("p").Tamper(camsim.Position{Pan: -0.8})
	defer func() {
		if t.Failed() {
			for _, ev := range a.Events() {
				t.Logf("event %s %s %s %s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Camera, ev.Detail)
			}
		}
	}()
	drift := col.Wait(t, 20*time.Second, "drift event", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "drift" })
	snap := col.Wait(t, 30*time.Second, "snap_back event", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "snap_back" })
	if snap.Seq <= drift.Seq {
		t.Errorf("snap_back seq %d not after drift %d", snap.Seq, drift.Seq)
	}

	// Every payload matches its schema in docs/schemas, carries a sequence
	// number, and no secret.
	schemas := map[string]docSchema{}
	stateWrites, stats := 0, 0
	for _, m := range col.All() {
		switch m.Topic {
		case root + "cameras/p/state":
			stateWrites++
		case root + "stats":
			stats++
		}
		if name := schemaFor(root, m.Topic); name != "" && len(m.Payload) > 0 {
			if _, ok := schemas[name]; !ok {
				schemas[name] = loadSchema(t, name)
			}
			if err := checkPayload(schemas[name], m.Payload); err != nil {
				t.Errorf("%s payload vs docs/schemas/%s: %v: %s", m.Topic, name, err, m.Payload)
			}
		}
		if len(m.Payload) == 0 || strings.Contains(m.Topic, "/cmd/") && !strings.HasSuffix(m.Topic, "/reply") {
			continue
		}
		if m.Seq == 0 {
			t.Errorf("no seq on %s: %s", m.Topic, m.Payload)
		}
		for _, s := range secrets {
			if strings.Contains(string(m.Payload), s) {
				t.Errorf("secret in %s payload", m.Topic)
			}
		}
	}
	t.Logf("FIGURES whole run (%v; commands, reloads, a tamper): %d retained state writes for the camera, %d stats messages",
		time.Since(started).Round(time.Second), stateWrites, stats)
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Error("a secret appears in the logs")
		}
	}
	// The ACL holds: the gateway's own credentials cannot write another
	// gateway's topics (the broker drops it; central never sees it).
	other := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL(false)).SetClientID("intruder").SetUsername("gw").SetPassword(secrets["broker.pw"]))
	if tok := other.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	other.Publish("velo/t/gw2/status", 1, true, `{"state":"forged"}`).WaitTimeout(5 * time.Second)
	other.Publish(root+"events", 1, false, `{"kind":"acl-probe"}`).WaitTimeout(5 * time.Second)
	col.Wait(t, 5*time.Second, "own-topic probe", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "acl-probe" })
	for _, m := range col.All() {
		if m.Topic == "velo/t/gw2/status" {
			t.Error("the ACL let gateway gw write gw2's topics")
		}
	}
	other.Disconnect(0)

	// G-4.6(1), ER-4.3: every command with its operator and outcome, the
	// reloads, the drift and the snap-back are in the audit log, whose
	// chain verifies against the heads published over MQTT.
	col.Wait(t, 10*time.Second, "audit_head event", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "audit_head" })
	var anchors []audit.Head
	pinned := ""
	for _, m := range col.All() {
		if testkit.Field(m, "kind") == "audit_head" {
			var h audit.Head
			if err := json.Unmarshal(m.Payload, &h); err != nil || h.Seq == 0 || len(h.Hash) != 64 {
				t.Errorf("audit_head payload: %v %s", err, m.Payload)
			}
			anchors = append(anchors, h)
			pinned = testkit.Field(m, "audit_key")
		}
	}
	// The centre pins the key published with the heads: the log's
	// checkpoints verify with it.
	keys, err := audit.ParsePublicKeys("audit_key", []byte(pinned))
	if err != nil {
		t.Fatalf("audit_head without a usable audit_key: %v", err)
	}
	rep, err := audit.Verify(config.AuditDir(cfg), audit.VerifyOptions{Anchors: anchors, PublicKeys: keys, Site: cfg.Site.ID, Gateway: cfg.Gateway})
	if err != nil || !rep.OK || rep.Anchors == 0 || rep.Checkpoints == 0 {
		t.Fatalf("audit verify: %v %s", err, rep)
	}
	entries, _ := audit.Show(config.AuditDir(cfg), audit.Filter{})
	want := map[string]bool{"agent_started/agent/ok": false, "command_executed/maint/ok": false, "command_refused/ops/refused": false,
		"config_rejected/agent/refused": false, "config_applied/agent/ok": false, "drift/agent/ok": false, "snap_back/agent/ok": false}
	for _, e := range entries {
		k := e.Action + "/" + e.Actor + "/" + e.Outcome
		if _, ok := want[k]; ok {
			want[k] = true
		}
		for _, s := range secrets {
			if strings.Contains(e.Detail, s) || strings.Contains(fmt.Sprint(e.Fields), s) {
				t.Errorf("secret in audit entry %d", e.Seq)
			}
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit log has no %s entry", k)
		}
	}
	t.Logf("audit: %s", rep)
}

// steadyStateNotRewritten: while a camera streams steadily its retained
// state is not rewritten (published on change only), and the stats topic
// (every 5 s here, QoS 0, not retained) carries its growing counters and
// its frame rate instead.
func steadyStateNotRewritten(t *testing.T, col *testkit.Collector, root string) {
	t.Helper()
	camFigures := func(m testkit.Message) (c struct {
		Status   string  `json:"status"`
		FramesIn uint64  `json:"frames_in"`
		FPSIn    float64 `json:"fps_in"`
	}) {
		var s struct {
			Cameras []json.RawMessage `json:"cameras"`
		}
		if json.Unmarshal(m.Payload, &s) == nil && len(s.Cameras) == 1 {
			_ = json.Unmarshal(s.Cameras[0], &c)
		}
		return c
	}
	t0 := time.Now()
	// The state is whole once the encoder opened (the video path names
	// it, published with the first frames): from there on it is steady.
	whole := col.Wait(t, 30*time.Second, "state with the encoder", func(m testkit.Message) bool {
		var s struct {
			Video struct {
				Encoder string `json:"encoder"`
			} `json:"video"`
		}
		return m.Topic == root+"cameras/p/state" && json.Unmarshal(m.Payload, &s) == nil && s.Video.Encoder != ""
	})
	isStats := func(m testkit.Message) bool { return m.Topic == root+"stats" && camFigures(m).Status == "streaming" }
	s1 := col.Wait(t, 30*time.Second, "stats, camera streaming", func(m testkit.Message) bool { return isStats(m) && m.Seq > whole.Seq })
	s2 := col.Wait(t, 30*time.Second, "next stats, camera streaming", func(m testkit.Message) bool { return isStats(m) && m.Seq > s1.Seq })
	writes := 0
	for _, m := range col.All() {
		if m.Topic == root+"cameras/p/state" && m.Seq > s1.Seq && m.Seq < s2.Seq {
			writes++
		}
	}
	f1, f2 := camFigures(s1), camFigures(s2)
	t.Logf("FIGURES steady streaming over one stats interval (5 s): %d retained state writes; frames_in %d → %d, fps_in %.1f (check took %v)",
		writes, f1.FramesIn, f2.FramesIn, f2.FPSIn, time.Since(t0).Round(100*time.Millisecond))
	if writes != 0 {
		for _, m := range col.All() {
			if m.Topic == root+"cameras/p/state" && m.Seq < s2.Seq {
				t.Logf("state seq %d: %s", m.Seq, m.Payload)
			}
		}
		t.Errorf("the retained state was rewritten %d times while the camera streamed steadily", writes)
	}
	if f2.FramesIn <= f1.FramesIn || f2.FPSIn <= 0 || s2.Retained {
		t.Errorf("stats do not count: %s then %s (retained %v)", s1.Payload, s2.Payload, s2.Retained)
	}
}
