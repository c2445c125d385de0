package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// 200 full camera reconnects (ONVIF session,
// PTZ lock, capture, masking, encoder, relay publisher) leave goroutines
// and file descriptors where they were (±2).
//
// Not parallel: goroutines and fds are counted for the whole process, so
// this runs while no other test of the package does (Go runs parallel tests
// only after the sequential ones).
func TestCameraReconnectCyclesNoLeak(t *testing.T) {
	// 60 cycles: a leak of one goroutine or fd per reconnect shows as 55
	// over the baseline taken at cycle 5 (the bound is 2); VELO_CYCLES=n
	// runs more.
	cycles := 60
	if n, err := strconv.Atoi(os.Getenv("VELO_CYCLES")); err == nil {
		cycles = n
	}
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "c", Address: "127.0.97.1", Username: "velo", Password: "pw", Serial: "SER-C", Scene: "ptz",
		FPS: 10, GOPFrames: 2, Width: 160, Height: 96, PTZ: &camsim.PTZConfig{PanTiltSpeed: 4, ZoomSpeed: 4, Presets: []camsim.PresetConfig{{Token: "1", Name: "home"}}}})
	dir := t.TempDir()
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
cameras:
  - id: c
    purpose: entrance
    match: {serial: SER-C}
    xaddr: %s
    username: velo
    password_file: cam.pw
    ptz_lock: {interval: 100ms}
    presets:
      - token: "1"
        position: {pan: 0, tilt: 0, zoom: 0}
        approval: {by: A, date: 2026-01-01, document: D}
`, testkit.FreePort(t), sim.Camera("c").XAddr())
	for name, s := range map[string]string{"cam.pw": "pw\n", "site.yaml": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	serving := func() {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			rel := a.relayForTest()
			if s, _ := a.State("c"); s.Approved && rel != nil && rel.Publishing("c") {
				return
			}
			if time.Now().After(deadline) {
				s, _ := a.State("c")
				t.Fatalf("camera not serving: %+v", s)
			}
		}
	}
	var base, baseFD int
	start := time.Now()
	for i := 0; i < cycles; i++ {
		serving()
		if i == 5 {
			base, baseFD = testkit.Settle(1<<30, 1<<30, 0)
		}
		if !a.restartCamera("c") {
			t.Fatal("restart refused")
		}
	}
	serving()
	g, f := testkit.Settle(base, baseFD, 2)
	t.Logf("FIGURES %d camera reconnects in %v: goroutines %d → %d, fds %d → %d", cycles, time.Since(start).Round(time.Second), base, g, baseFD, f)
	if g > base+2 || f > baseFD+2 {
		t.Errorf("growth after %d reconnects: goroutines %d → %d, fds %d → %d", cycles, base, g, baseFD, f)
	}
}
