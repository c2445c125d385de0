package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// ER-4.7 across restarts: masks changed while velo is stopped, under the
// approval document of the old masks, keep the camera from streaming at
// the next start (config_rejected, audited), and at every start after it;
// the same change with its own approval document streams, and the change
// is a view_changed audit entry naming the document.
func TestER47_RestartComparesWithTheLastApprovedViews(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "f", Address: "127.0.95.40", Username: "velo", Password: "cam-pw", Serial: "SER-F",
		Scene: "badge", FPS: 10, Width: 640, Height: 360})
	b := camsim.Regions(sim.Camera("f").Config(), camsim.Position{})[camsim.RegionBadgeReader]
	dir := t.TempDir()
	write := func(grow float64, doc string) {
		t.Helper()
		x0, y0, x1, y1 := b.X0-grow, b.Y0-grow, b.X1+grow, b.Y1+grow
		site := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is about approvals, not pixels
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
cameras:
  - id: f
    purpose: corridor
    match: {serial: SER-F}
    xaddr: %s
    username: velo
    password_file: cam.pw
    approval: {by: A. Bianchi, date: 2026-01-01, document: %s}
    masks:
      - name: badge
        polygon: [{x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}]
`, testkit.FreePort(t), sim.Camera("f").XAddr(), doc, x0, y0, x1, y0, x1, y1, x0, y1)
		testkit.SecretFile(t, dir, "cam.pw", "cam-pw\n")
		if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auditOf := func(action string) []audit.Entry {
		t.Helper()
		es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: action, Camera: "f"})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	streams := func(a *Agent) bool { rel := a.relayForTest(); return rel != nil && rel.Publishing("f") }

	// First start: the views are recorded as approved, and audited.
	write(0.01, "VS-1")
	runAgentUntil(t, dir, "camera f streams", streams)
	if es := auditOf("view_changed"); len(es) != 1 || es[0].Ref != "VS-1" || !strings.Contains(es[0].Detail, "first start") {
		t.Errorf("first start: view_changed entries %+v", es)
	}
	// Masks grown while stopped, same document: refused at this start and
	// the next one.
	write(0.03, "VS-1")
	for run := 1; run <= 2; run++ {
		runAgentUntil(t, dir, "camera f refused", func(a *Agent) bool {
			s, _ := a.State("f")
			if !strings.Contains(s.Error, "ER-4.7") {
				return false
			}
			time.Sleep(2 * time.Second) // what a streaming camera would need to start
			for _, ev := range a.Events() {
				if ev.Kind == event.CameraOnline && ev.Camera == "f" {
					t.Errorf("run %d: camera f was connected: %s", run, ev.Detail)
				}
			}
			if streams(a) {
				t.Errorf("run %d: camera f streams masks changed under the old approval", run)
			}
			return true
		})
		if es := auditOf("config_rejected"); len(es) != run || es[run-1].Outcome != "refused" || !strings.Contains(es[run-1].Detail, `"VS-1"`) {
			t.Errorf("run %d: config_rejected entries %+v", run, es)
		}
	}
	// The same masks with their own approval: streamed, and audited.
	write(0.03, "VS-2")
	runAgentUntil(t, dir, "camera f streams again", streams)
	es := auditOf("view_changed")
	if len(es) != 2 || es[1].Ref != "VS-2" || es[1].Outcome != "ok" || !strings.Contains(es[1].Detail, "view changed while velo was stopped; approved by A. Bianchi on 2026-01-01 (VS-2)") {
		t.Errorf("view_changed entries %+v", es)
	}
}

// runAgentUntil runs the agent on dir/site.yaml until done (polled) says
// so, then stops it.
func runAgentUntil(t *testing.T, dir, what string, done func(*Agent) bool) {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()
	testkit.WaitFor(t, 30*time.Second, what, func() bool { return done(a) })
}
