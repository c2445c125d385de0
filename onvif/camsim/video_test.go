package camsim_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

func TestVideoSceneFollowsPTZ(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not installed: run `make deps`")
	}
	cfg := camsim.CameraConfig{ID: "v", Address: "127.0.99.1", Username: "u", Password: "p4ss", Scene: "ptz", FPS: 5,
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 4, ZoomSpeed: 4, Presets: []camsim.PresetConfig{{Token: "1", Name: "right", Pan: 0.3, Tilt: 0.1, Zoom: 0.3}}}}
	sim := camsim.StartForTest(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cam := sim.Camera("v")
	cc := cam.Config()
	if cc.Width != 1920 || cc.Height != 1080 {
		t.Fatalf("default resolution %dx%d, want 1080p", cc.Width, cc.Height)
	}
	url := fmt.Sprintf("rtsp://u:p4ss@%s:%d/main", cc.Address, cc.RTSPPort)

	// check grabs frames until the marked regions show the marker pattern
	// where Regions says they are (encoder latency: a few frames).
	check := func(pos camsim.Position) map[string]camsim.NormRect {
		t.Helper()
		regs := camsim.Regions(cc, pos)
		if _, ok := regs[camsim.RegionBadgeReader]; !ok {
			t.Fatalf("badge reader not in view at %+v", pos)
		}
		var problems []string
		for try := 0; try < 10; try++ {
			problems = nil
			y := camsim.GrabLuma(t, url, cc.Width, cc.Height, 1)
			for name, r := range regs {
				if sd := camsim.LumaStddev(y, cc.Width, cc.Height, r, 6); sd < 12 {
					problems = append(problems, fmt.Sprintf("%s at %+v: luma stddev %.1f, marker missing", name, r, sd))
				}
			}
			// A plain wall patch right of the badge reader carries no pattern.
			b := regs[camsim.RegionBadgeReader]
			wall := camsim.NormRect{X0: b.X1 + 0.02, Y0: b.Y0, X1: b.X1 + 0.06, Y1: b.Y1}
			if sd := camsim.LumaStddev(y, cc.Width, cc.Height, wall, 6); sd > 4 {
				problems = append(problems, fmt.Sprintf("wall next to the badge reader: stddev %.1f", sd))
			}
			if len(problems) == 0 {
				return regs
			}
		}
		t.Fatalf("at %+v: %v", pos, problems)
		return nil
	}
	home := check(camsim.Position{})

	c, err := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: "u", Password: "p4ss"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GotoPreset(ctx, "main", "1"); err != nil {
		t.Fatal(err)
	}
	for {
		p, moving := cam.Position()
		if !moving && p.Pan == 0.3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("camera never reached the preset")
		case <-time.After(50 * time.Millisecond):
		}
	}
	moved := check(camsim.Position{Pan: 0.3, Tilt: 0.1, Zoom: 0.3})
	if moved[camsim.RegionBadgeReader] == home[camsim.RegionBadgeReader] {
		t.Error("badge reader did not move in the image when the camera moved")
	}

	// Wrong credentials: refused.
	bad := fmt.Sprintf("rtsp://u:wrong@%s:%d/main", cc.Address, cc.RTSPPort)
	if err := exec.CommandContext(ctx, "ffprobe", "-loglevel", "error", "-rtsp_transport", "tcp", bad).Run(); err == nil {
		t.Error("stream readable with a wrong password")
	}
}

// The camera's RTSP server: readers need the camera's username and
// password (digest); a camera with auth none serves anyone.
func TestRTSPReadersAuthenticate(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe not installed: run `make deps`")
	}
	small := func(c camsim.CameraConfig) camsim.CameraConfig {
		c.Scene, c.FPS, c.Width, c.Height = "badge", 5, 320, 180
		return c
	}
	sim := camsim.StartForTest(t,
		small(camsim.CameraConfig{ID: "a", Address: "127.0.99.2", Username: "u", Password: "p4ss"}),
		small(camsim.CameraConfig{ID: "open", Address: "127.0.99.3", Auth: camsim.AuthNone}))
	url := func(id, userinfo, path string) string {
		cc := sim.Camera(id).Config()
		return fmt.Sprintf("rtsp://%s%s:%d/%s", userinfo, cc.Address, cc.RTSPPort, path)
	}
	cases := []struct {
		name string
		url  string
		ok   bool
	}{
		{"right credentials, main", url("a", "u:p4ss@", "main"), true},
		{"right credentials, sub", url("a", "u:p4ss@", "sub"), true},
		{"wrong password", url("a", "u:wrong@", "sub"), false},
		{"another user", url("a", "v:p4ss@", "sub"), false},
		{"no credentials", url("a", "", "sub"), false},
		{"no such stream", url("a", "u:p4ss@", "third"), false},
		{"auth none", url("open", "", "main"), true},
		{"auth none, no such stream", url("open", "", "third"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			t.Cleanup(cancel)
			out, err := exec.CommandContext(ctx, "ffprobe", "-loglevel", "error", "-rtsp_transport", "tcp", "-analyzeduration", "100000",
				"-show_entries", "stream=codec_name", "-of", "csv=p=0", tc.url).CombinedOutput()
			switch {
			case tc.ok && (err != nil || string(out) != "h264\n"):
				t.Errorf("not readable: %v: %q", err, out)
			case !tc.ok && err == nil:
				t.Errorf("readable: %q", out)
			}
		})
	}
}

// Only the camera's own encoder, which knows the secret publish path, may
// publish: a client announcing on a guessed path is refused.
func TestRTSPPublishNeedsTheSecretPath(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not installed: run `make deps`")
	}
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "p", Address: "127.0.99.4", Username: "u", Password: "p4ss",
		Scene: "badge", FPS: 5, Width: 320, Height: 180})
	cc := sim.Camera("p").Config()
	// The reader's credentials do not make a publisher either.
	for _, target := range []struct{ userinfo, path string }{{"", "main"}, {"", "publish/guess/main"}, {"u:p4ss@", "main"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		url := fmt.Sprintf("rtsp://%s%s:%d/%s", target.userinfo, cc.Address, cc.RTSPPort, target.path)
		out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5",
			"-t", "1", "-c:v", "libx264", "-f", "rtsp", "-rtsp_transport", "tcp", url).CombinedOutput()
		if err == nil {
			t.Errorf("published on %s: %s", target.path, out)
		}
	}
}
