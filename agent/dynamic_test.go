package agent

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"velo/agent/access"
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

// TestG45_DynamicZonePerPTZPreset: a PTZ camera (the simulator's, two
// approved presets) with dynamic masking has a dynamic_zone per preset:
// Velo's RTSP output, decoded, shows preset 1's zone (the left half) masked
// while the camera is there, then, after preset/apply 2, preset 2's zone
// (the right half); during the move every frame is blank, and no frame
// has the wrong zone or none. min_luma 128 (the scene's zones are darker)
// makes every frame fall back to its whole zone, so each frame shows
// exactly which zone the stage used for it.
func TestG45_DynamicZonePerPTZPreset(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "pz", Address: "127.0.97.48", Username: "velo", Password: "pw", Serial: "SER-PZ",
		Scene: "ptz", FPS: 10, Width: 320, Height: 240,
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 1, ZoomSpeed: 1, Presets: []camsim.PresetConfig{{Token: "1", Pan: -0.5}, {Token: "2", Pan: 0.5}}}})
	port := testkit.FreePort(t)
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [pz]}
cameras:
  - id: pz
    purpose: traffic
    match: {serial: SER-PZ}
    xaddr: %s
    username: velo
    password_file: cam.pw
    dynamic: {purpose: traffic, detectors: [motion], style: fill, color: "#FF00FF", min_luma: 128}
    presets:
      - token: "1"
        position: {pan: -0.5, tilt: 0, zoom: 0}
        approval: {by: A, date: 2026-01-01, document: D}
        dynamic_zone: [{x: 0, y: 0}, {x: 0.5, y: 0}, {x: 0.5, y: 1}, {x: 0, y: 1}]
      - token: "2"
        position: {pan: 0.5, tilt: 0, zoom: 0}
        approval: {by: A, date: 2026-01-01, document: D}
        dynamic_zone: [{x: 0.5, y: 0}, {x: 1, y: 0}, {x: 1, y: 1}, {x: 0.5, y: 1}]
`, port, sim.Camera("pz").XAddr())
	a, ctx := runSite(t, map[string]string{"cam.pw": "pw\n", "ops.pw": "ops-pw\n", "site.yaml": text}, 2*time.Minute)
	at := func(preset string) func() bool {
		return func() bool {
			s, _ := a.State("pz")
			rel := a.relayForTest()
			return s.Status == "streaming" && s.Preset == preset && rel != nil && rel.Publishing("pz")
		}
	}
	testkit.WaitFor(t, 60*time.Second, "streaming at preset 1", at("1"))
	out := decodeColour(t, fmt.Sprintf("rtsp://ops:%s@127.0.0.1:%d/pz", access.StreamPassword("t", "ops", "ops-pw", access.LegacyStreamGeneration), port))
	time.Sleep(2 * time.Second)
	a.mu.Lock()
	w := a.workers["pz"]
	a.mu.Unlock()
	w.mu.Lock()
	lock := w.lock
	w.mu.Unlock()
	if err := lock.Apply(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "streaming at preset 2", at("2"))
	time.Sleep(3 * time.Second)
	frames := out.stop()
	var n [4]int // blank, zone 1, zone 2, other
	last1, first2 := -1, -1
	for i, f := range frames {
		k := zoneOf(f)
		n[k]++
		switch {
		case k == 1:
			last1 = i
		case k == 2 && first2 < 0:
			first2 = i
		}
	}
	t.Logf("%d frames decoded: %d blank, %d with preset 1's zone, %d with preset 2's, %d other", len(frames), n[0], n[1], n[2], n[3])
	if n[3] != 0 {
		t.Errorf("%d frames with neither preset's zone masked whole (nor blank)", n[3])
	}
	if n[1] < 10 || n[2] < 10 || n[0] == 0 || first2 < last1 {
		t.Errorf("want preset 1's zone, then blank frames during the move, then preset 2's zone only: counts %v, last zone-1 frame %d, first zone-2 frame %d", n, last1, first2)
	}
}

// decodeColour is ffmpeg reading Velo's output as small I420 frames.
func decodeColour(t *testing.T, url string) *decoded {
	t.Helper()
	return decodeRaw(t, url, fmt.Sprintf("scale=%d:%d", zw, zh), zw*zh*3/2, "-pix_fmt", "yuv420p")
}

const zw, zh = 160, 120

// zoneOf classifies a decoded frame: 0 blank, 1 left half magenta (and
// not the right), 2 right half magenta (and not the left), 3 anything
// else. The columns next to the middle are left out (scaling blends them).
func zoneOf(f []byte) int {
	y, u, v := f[:zw*zh], f[zw*zh:zw*zh*5/4], f[zw*zh*5/4:]
	if isBlankI420(y) {
		return 0
	}
	m := maskspec.RGBToYUV(255, 0, 255)
	var left, right, nl, nr float64
	for i := range u {
		x := i % (zw / 2)
		if x >= zw/4-3 && x < zw/4+3 {
			continue
		}
		hit := absDiff(u[i], m.U) < 24 && absDiff(v[i], m.V) < 24 && absDiff(y[(i/(zw/2))*2*zw+x*2], m.Y) < 32
		if x < zw/4 {
			nl++
			if hit {
				left++
			}
		} else {
			nr++
			if hit {
				right++
			}
		}
	}
	l, r := left/nl, right/nr
	switch {
	case l > 0.95 && r < 0.2:
		return 1
	case r > 0.95 && l < 0.2:
		return 2
	}
	return 3
}

func isBlankI420(y []byte) bool {
	var mean float64
	for _, b := range y {
		mean += float64(b)
	}
	return mean/float64(len(y)) < 40 && isBlank(y)
}
