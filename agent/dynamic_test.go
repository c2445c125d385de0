package agent

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"velo/agent/metrics"
	"velo/internal/testkit"
	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// TestG45_DynamicMaskingInVeloRun: a fixed camera streaming real footage
// (camsim source: vtest.avi) with dynamic masking on: velo run masks the
// people it detects in the frames it encodes (fill #FF00FF here, so they
// can be found), and the camera's state carries the counters.
func TestG45_DynamicMaskingInVeloRun(t *testing.T) {
	const clip = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	if _, err := os.Stat(clip); err != nil {
		t.Fatalf("%s missing: Debian package opencv-doc (deploy/deps.sh)", clip)
	}
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "d", Address: "127.0.97.47", Username: "velo", Password: "pw", Serial: "SER-D",
		Source: clip, FPS: 10, GOPFrames: 5, Width: 384, Height: 288})
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
cameras:
  - id: d
    purpose: tourism
    match: {serial: SER-D}
    xaddr: %s
    username: velo
    password_file: cam.pw
    approval: {by: A, date: 2026-01-01, document: D}
    dynamic:
      purpose: tourist-webcam
      detectors: [motion]
      style: fill
      color: "#FF00FF"
      dynamic_zone: [{x: 0, y: 0}, {x: 1, y: 0}, {x: 1, y: 1}, {x: 0, y: 1}]
`, testkit.FreePort(t), sim.Camera("d").XAddr())
	a, ctx := runSite(t, map[string]string{"cam.pw": "pw\n", "site.yaml": text}, 2*time.Minute)
	magenta := maskspec.RGBToYUV(255, 0, 255)
	// The motion detector learns the background first (the whole frame
	// masked); then only the people are.
	best, seen := 0.0, []float64{}
	for ctx.Err() == nil && (best < 0.01 || best > 0.6) {
		time.Sleep(500 * time.Millisecond)
		a.mu.Lock()
		w := a.workers["d"]
		a.mu.Unlock()
		if w == nil {
			continue
		}
		w.mu.Lock()
		pl := w.pl
		w.mu.Unlock()
		if pl == nil {
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		f, err := pl.Snapshot(sctx)
		scancel()
		if err != nil {
			continue
		}
		y, u, v := f.Planes()
		n := 0
		for i := 0; i < len(u); i++ {
			if absDiff(u[i], magenta.U) < 8 && absDiff(v[i], magenta.V) < 8 && absDiff(y[(i/(f.W/2))*2*f.W+(i%(f.W/2))*2], magenta.Y) < 8 {
				n++
			}
		}
		best = float64(n) / float64(len(u))
		seen = append(seen, best)
	}
	if best < 0.01 || best > 0.6 {
		t.Fatalf("shares of encoded frames dynamically masked: %.3f, want people masked (≥ 1 %%), not the whole picture", seen)
	}
	// The counters are figures (stats topic, /metrics), not state.
	var dyn *metrics.Dynamic
	for ctx.Err() == nil {
		if dyn = a.Figures().Cameras[0].Dynamic; dyn != nil && dyn.Detections > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dyn == nil || dyn.Detections == 0 || dyn.TrackedBoxes == 0 {
		t.Fatalf("figures without dynamic counters: %+v", dyn)
	}
	t.Logf("masked share %.3f; dynamic figures %+v", best, *dyn)
}

func absDiff(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
