package camsim

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"time"
)

// TB is the part of testing.TB the helpers use (so this package does not
// import testing).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// StartForTest starts cameras with unicast discovery off (the usual test
// set-up); see StartConfigForTest.
func StartForTest(t TB, cams ...CameraConfig) *Sim {
	t.Helper()
	off := false
	return StartConfigForTest(t, Config{Discovery: DiscoveryConfig{Unicast: &off}, Cameras: cams})
}

// StartConfigForTest starts a simulator from cfg, waits for its cameras'
// video when they have any, and closes it when the test ends (closing it
// earlier is allowed). Tests start simulators through it alone.
func StartConfigForTest(t TB, cfg Config) *Sim {
	t.Helper()
	sim, err := New(cfg, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if err := sim.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	return sim
}

// RTSPURL is the camera's stream URL for profile ("main" or "sub"),
// without credentials.
func (c *Camera) RTSPURL(profile string) string {
	return fmt.Sprintf("rtsp://%s:%d/%s", c.cfg.Address, c.cfg.RTSPPort, profile)
}

// GrabLuma decodes n frames of an RTSP URL or a file with ffmpeg (an
// independent decoder) and returns the last frame's luma (full range).
func GrabLuma(t TB, src string, w, h, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	args := []string{"-hide_banner", "-loglevel", "error"}
	if len(src) > 7 && src[:7] == "rtsp://" {
		args = append(args, "-rtsp_transport", "tcp")
	}
	args = append(args, "-i", src, "-frames:v", fmt.Sprint(n), "-f", "rawvideo", "-pix_fmt", "gray", "-")
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v", src, err)
	}
	if len(out) < w*h {
		t.Fatalf("decoded %d bytes, want ≥ %d", len(out), w*h)
	}
	return out[len(out)-w*h:]
}

// LumaStddev is the standard deviation of luma inside r, shrunk by margin
// pixels on each side (against codec bleed at edges).
func LumaStddev(y []byte, w, h int, r NormRect, margin int) float64 {
	x0, y0 := int(r.X0*float64(w))+margin, int(r.Y0*float64(h))+margin
	x1, y1 := int(r.X1*float64(w))-margin, int(r.Y1*float64(h))-margin
	var n, sum, sq float64
	for yy := max(y0, 0); yy < min(y1, h); yy++ {
		for xx := max(x0, 0); xx < min(x1, w); xx++ {
			v := float64(y[yy*w+xx])
			sum += v
			sq += v * v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	m := sum / n
	return math.Sqrt(max(sq/n-m*m, 0))
}

// ProbeCodec is the codec ffprobe finds in an RTSP URL's first video
// stream ("h264", "hevc").
func ProbeCodec(t TB, src string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// The SDP names the codec: no need to analyse seconds of stream.
	out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-analyzeduration", "0", "-probesize", "32", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", src).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	return strings.TrimSpace(string(out))
}
