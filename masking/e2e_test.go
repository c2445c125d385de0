package masking_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/relay"
	"velo/onvif/camsim"
)

const (
	e2eW, e2eH = 1280, 720
	opUser     = "ops-viewer"
	opPass     = "Op-Pass-31"
)

type rect struct{ x0, y0, x1, y1 float64 }

func (r rect) grow(d float64) rect {
	return rect{max(r.x0-d, 0), max(r.y0-d, 0), min(r.x1+d, 1), min(r.y1+d, 1)}
}

func (r rect) poly() []maskspec.Point {
	return []maskspec.Point{{X: r.x0, Y: r.y0}, {X: r.x1, Y: r.y0}, {X: r.x1, Y: r.y1}, {X: r.x0, Y: r.y1}}
}

func pix(r rect, w, h int) (int, int, int, int) {
	return int(r.x0 * float64(w)), int(r.y0 * float64(h)), int(r.x1 * float64(w)), int(r.y1 * float64(h))
}

func stddev(y []byte, w, h int, r rect) float64 {
	return camsim.LumaStddev(y, w, h, camsim.NormRect{X0: r.x0, Y0: r.y0, X1: r.x1, Y1: r.y1}, 0)
}

// psnr of a against b over r, skipping pixels inside any of skip.
func psnr(a, b []byte, w, h int, r rect, skip []rect) float64 {
	x0, y0, x1, y1 := pix(r, w, h)
	var se, n float64
	for yy := y0; yy < y1; yy++ {
	next:
		for xx := x0; xx < x1; xx++ {
			fx, fy := (float64(xx)+0.5)/float64(w), (float64(yy)+0.5)/float64(h)
			for _, s := range skip {
				if fx >= s.x0 && fx < s.x1 && fy >= s.y0 && fy < s.y1 {
					continue next
				}
			}
			d := float64(a[yy*w+xx]) - float64(b[yy*w+xx])
			se += d * d
			n++
		}
	}
	if se == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/(se/n))
}

// Thresholds stated for docs/masking.md.
const (
	maxMaskedStddev = 3.0  // a filled region is flat: the marker (stddev ≈ 20) is gone
	minPSNR         = 30.0 // dB, unmasked region vs the source scene, after two H.264 encodes
)

func TestEndToEndMaskedRTSPAndSegments(t *testing.T) {
	cam := camsim.CameraConfig{ID: "e2e", Address: "127.0.97.2", Username: "camuser", Password: "cam-pw-9",
		Scene: "ptz", FPS: 10, Width: e2eW, Height: e2eH, PTZ: &camsim.PTZConfig{}}
	sim := camsim.StartForTest(t, cam)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cc := sim.Camera("e2e").Config()

	regs := camsim.Regions(cc, camsim.Position{})
	badge := regs[camsim.RegionBadgeReader]
	street := regs[camsim.RegionStreet]
	rb := rect{badge.X0, badge.Y0, badge.X1, badge.Y1}
	rs := rect{street.X0, street.Y0, street.X1, street.Y1}
	m, err := masking.NewMasker("e2e", maskspec.FailBlank)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "1", Masks: []maskspec.Mask{
		{Name: "badge reader", Polygon: rb.grow(0.015).poly()},
		{Name: "street", Polygon: rs.grow(0.015).poly()},
	}}}); err != nil {
		t.Fatal(err)
	}
	m.SetView("1", true)

	relayAddr := fmt.Sprintf("127.0.97.1:%d", testkit.FreePortOn(t, "127.0.97.1"))
	const recUser, recPass = "velo-recorder", "rec-internal-pw"
	rel, err := relay.New(relayAddr, "velo", func(user, name string) (relay.Secret, bool) {
		switch {
		case user == opUser && name == "e2e":
			return relay.Password(opPass), true
		case user == recUser && name == "e2e":
			return relay.Password(recPass), true
		}
		return relay.Secret{}, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rel.Start(); err != nil {
		t.Fatal(err)
	}
	defer rel.Close()
	recDir := t.TempDir()
	open, err := masking.CaptureConfig{URL: fmt.Sprintf("rtsp://%s:%d/main", cc.Address, cc.RTSPPort), Username: "camuser", Password: "cam-pw-9"}.Opener()
	if err != nil {
		t.Fatal(err)
	}
	p, err := masking.NewPipeline(masking.PipelineConfig{Camera: "e2e", Masker: m, Open: open, Logf: t.Logf,
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: "e2e", FPS: 10, Relay: rel})})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := masking.NewRecorder(masking.RecorderConfig{Camera: "e2e", Source: rel.ReadURL("e2e"), Username: recUser, Password: recPass,
		Dir: recDir, SegmentLength: 2 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(pctx) }()
	for !rel.Publishing("e2e") {
		select {
		case err := <-done:
			t.Fatalf("pipeline stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("masked stream never published")
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Velo's RTSP output, decoded by ffmpeg.
	out := camsim.GrabLuma(t, fmt.Sprintf("rtsp://%s:%s@%s/e2e", opUser, opPass, relayAddr), e2eW, e2eH, 25)
	// The source as the camera sees it, decoded by ffmpeg too.
	src := camsim.GrabLuma(t, fmt.Sprintf("rtsp://camuser:cam-pw-9@%s:%d/main", cc.Address, cc.RTSPPort), e2eW, e2eH, 1)
	if sd := stddev(src, e2eW, e2eH, rb); sd < 12 {
		t.Fatalf("source badge reader stddev %.1f: no marker to hide, test proves nothing", sd)
	}
	for name, r := range map[string]rect{"badge reader": rb, "street": rs} {
		if sd := stddev(out, e2eW, e2eH, r); sd > maxMaskedStddev {
			t.Errorf("output %s region stddev %.2f > %.1f: scene detail leaks", name, sd, maxMaskedStddev)
		}
	}
	// The unmasked part (above the street, away from both masks) matches
	// the source stream (static there; both decoded by ffmpeg).
	unmasked := rect{0, 0, 1, 0.65}
	skip := []rect{rb.grow(0.03), rs.grow(0.03)}
	if os.Getenv("VELO_DUMP") != "" {
		_ = os.WriteFile("/tmp/out.pgm", append([]byte(fmt.Sprintf("P5\n%d %d\n255\n", e2eW, e2eH)), out...), 0o644)
		_ = os.WriteFile("/tmp/src.pgm", append([]byte(fmt.Sprintf("P5\n%d %d\n255\n", e2eW, e2eH)), src...), 0o644)
	}
	if v := psnr(out, src, e2eW, e2eH, unmasked, skip); v < minPSNR {
		t.Errorf("unmasked region PSNR %.1f dB < %.0f", v, minPSNR)
	} else {
		t.Logf("unmasked region PSNR vs source: %.1f dB", v)
	}
	// Readers need an operator's credentials.
	for _, bad := range []string{opUser + ":wrong", "intruder:" + opPass} {
		url := fmt.Sprintf("rtsp://%s@%s/e2e", bad, relayAddr)
		if exec.Command("ffprobe", "-loglevel", "error", "-rtsp_transport", "tcp", url).Run() == nil {
			t.Errorf("stream readable as %s", bad)
		}
	}
	// Wait for two completed segments, then stop.
	for len(rec.Completed()) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("segments never completed: %v", rec.Completed())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The recorder's relay password is on no command line (/proc is
	// readable by every local user).
	if procs, _ := filepath.Glob("/proc/[0-9]*/cmdline"); len(procs) == 0 {
		t.Error("no /proc to check")
	} else {
		sawFFmpeg := false
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(recPass)) {
				t.Errorf("%s carries the recorder's password: %q", p, bytes.ReplaceAll(b, []byte{0}, []byte(" ")))
			}
			sawFFmpeg = sawFFmpeg || bytes.Contains(b, []byte(".input.ffconcat"))
		}
		if !sawFFmpeg {
			t.Error("the recorder's ffmpeg was not found running")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-recDone; err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("stats: captured %d encoded %d dropped %d blanked %d mask p50 %v p99 %v encode p50 %v p99 %v",
		st.Captured, st.Encoded, st.Dropped, st.Blanked, st.MaskP50, st.MaskP99, st.EncodeP50, st.EncodeP99)
	segs := rec.Completed()
	if len(segs) < 2 {
		all, _ := os.ReadDir(recDir)
		t.Fatalf("segments: %v (dir: %v)", segs, all)
	}
	for _, s := range segs {
		camName, start, err := masking.SegmentStart(s)
		if err != nil || camName != "e2e" || time.Since(start) > time.Minute {
			t.Errorf("segment %s: %s %v %v", s, camName, start, err)
		}
		y := camsim.GrabLuma(t, s, e2eW, e2eH, 1)
		for name, r := range map[string]rect{"badge reader": rb, "street": rs} {
			if sd := stddev(y, e2eW, e2eH, r); sd > maxMaskedStddev {
				t.Errorf("segment %s: %s stddev %.2f: scene detail recorded", filepath.Base(s), name, sd)
			}
		}
	}
}

// The FFmpeg capture backend is a working fallback.
func TestCaptureFFmpegBackend(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "ff", Address: "127.0.97.3", Username: "u", Password: "p", Scene: "badge", FPS: 10, Width: 640, Height: 360})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := sim.Camera("ff").RTSPURL("main")
	for _, be := range []masking.Backend{masking.BackendFFmpeg, masking.BackendGStreamer} {
		open, err := masking.CaptureConfig{URL: url, Username: "u", Password: "p", Backend: be}.Opener()
		if err != nil {
			t.Fatal(err)
		}
		src, err := open(ctx)
		if err != nil {
			t.Fatalf("%s: %v", be, err)
		}
		fr := &masking.Frame{}
		if err := src.Read(fr); err != nil {
			t.Fatalf("%s: %v", be, err)
		}
		src.Close()
		if fr.W != 640 || fr.H != 360 || len(fr.Data) != 640*360*3/2 {
			t.Errorf("%s: frame %dx%d (%d bytes)", be, fr.W, fr.H, len(fr.Data))
		}
	}
	// Wrong credentials: the open fails, and the error carries no secret.
	open, _ := masking.CaptureConfig{URL: url, Username: "u", Password: "secret-wrong"}.Opener()
	if src, err := open(ctx); err == nil {
		fr := &masking.Frame{}
		if src.Read(fr) == nil {
			t.Error("stream read with a wrong password")
		}
		src.Close()
	} else if strings.Contains(err.Error(), "secret-wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
}
