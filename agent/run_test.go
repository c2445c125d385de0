package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// The agent against simulated cameras: the PTZ camera is locked and its
// masked stream served to an operator; a device whose serial does not match
// the config is never streamed; a tamper is blanked, reported and undone.
func TestAgentRunsCameras(t *testing.T) {
	ptz := camsim.CameraConfig{ID: "p", Address: "127.0.95.1", Username: "velo", Password: "cam-pw", Serial: "SER-P", Scene: "ptz",
		FPS: 10, Width: 640, Height: 360, PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{{Token: "1", Name: "home"}}}}
	other := camsim.CameraConfig{ID: "x", Address: "127.0.95.2", Username: "velo", Password: "cam-pw", Serial: "SER-OTHER", Scene: "street",
		FPS: 10, Width: 640, Height: 360}
	sim := camsim.StartForTest(t, ptz, other)
	b := camsim.Regions(sim.Camera("p").Config(), camsim.Position{})[camsim.RegionBadgeReader]

	port := testkit.FreePort(t)
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [p, x]}
cameras:
  - id: p
    purpose: entrance
    match: {serial: SER-P}
    xaddr: %s
    username: velo
    password_file: cam.pw
    ptz_lock: {interval: 100ms}
    presets:
      - token: "1"
        position: {pan: 0, tilt: 0, zoom: 0}
        approval: {by: A, date: 2026-01-01, document: D}
        masks:
          - name: badge
            polygon: [{x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}]
  - id: x
    purpose: yard
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SER-EXPECTED}
    xaddr: %s
    username: velo
    password_file: cam.pw
`, port, sim.Camera("p").XAddr(), b.X0-0.01, b.Y0-0.01, b.X1+0.01, b.Y0-0.01, b.X1+0.01, b.Y1+0.01, b.X0-0.01, b.Y1+0.01, sim.Camera("x").XAddr())
	dir := t.TempDir()
	for name, pw := range map[string]string{"ops.pw": "ops-pw\n", "cam.pw": "cam-pw\n", "site.yaml": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	w := &syncWriter{b: &logs}
	a := New(cfg, zerolog.New(w), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		s, _ := a.State("p")
		rel := a.relayForTest()
		if s.Approved && rel != nil && rel.Publishing("p") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera p never served: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	url := fmt.Sprintf("rtsp://ops:%s@127.0.0.1:%d/p", access.StreamPassword("t", "ops", "ops-pw", access.LegacyStreamGeneration), port)
	y := camsim.GrabLuma(t, url, 640, 360, 25)
	// The login password itself is not an RTSP password: the relay checks
	// digest only against the derived stream password's HA1.
	plain := fmt.Sprintf("rtsp://ops:ops-pw@127.0.0.1:%d/p", port)
	if err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", plain, "-frames:v", "1", "-f", "null", "-").Run(); err == nil {
		t.Error("the relay accepted the login password as the stream password")
	}
	if sd := camsim.LumaStddev(y, 640, 360, b, 1); sd > 3 {
		t.Errorf("badge reader in the served stream: stddev %.1f", sd)
	}
	// The mismatching device: reported, never streamed.
	for time.Now().Before(deadline) {
		if s, _ := a.State("x"); strings.Contains(s.Error, "serial") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s, _ := a.State("x"); !strings.Contains(s.Error, `"SER-OTHER"`) || s.Online {
		t.Errorf("camera x state %+v", s)
	}
	publishing := a.relayForTest().Publishing("x")
	if publishing {
		t.Error("a device with the wrong serial is streamed")
	}
	// Tamper: drift → snap-back, both reported.
	sim.Camera("p").Tamper(camsim.Position{Pan: 0.7})
	waitEvent := func(kind event.Kind) {
		for time.Now().Before(deadline.Add(20 * time.Second)) {
			for _, ev := range a.Events() {
				if ev.Kind == kind && ev.Camera == "p" {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %s event", kind)
	}
	waitEvent(event.Drift)
	waitEvent(event.SnapBack)
	stopAt := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopAt); d > 15*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(logs.String(), "cam-pw") || strings.Contains(logs.String(), "ops-pw") {
		t.Error("a password appears in the logs")
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
