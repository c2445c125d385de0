package camsim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/onvif/camsim"
)

func validCam(id, addr string) camsim.CameraConfig {
	return camsim.CameraConfig{ID: id, Address: addr, Username: "u", Password: "p"}
}

// Every section's check, and the first error wins in config order.
func TestConfigValidateRefuses(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*camsim.Config)
		want string
	}{
		{"no cameras", func(c *camsim.Config) { c.Cameras = nil }, "cameras: at least one camera is required"},
		{"no id", func(c *camsim.Config) { c.Cameras[1].ID = "" }, "cameras[1].id: required"},
		{"duplicate id", func(c *camsim.Config) { c.Cameras[1].ID = "a" }, "cameras[1] (a).id: duplicate"},
		{"address not loopback", func(c *camsim.Config) { c.Cameras[0].Address = "10.0.0.1" }, `cameras[0] (a).address: "10.0.0.1" must be a 127.0.0.0/8 address`},
		{"http port", func(c *camsim.Config) { c.Cameras[0].HTTPPort = 70000 }, "cameras[0] (a).http_port: 70000 out of range"},
		{"address and port twice", func(c *camsim.Config) {
			c.Cameras[0].HTTPPort, c.Cameras[1].HTTPPort, c.Cameras[1].Address = 80, 80, c.Cameras[0].Address
		}, "cameras[1] (b): address 127.0.90.1:80 used twice"},
		{"address twice", func(c *camsim.Config) { c.Cameras[1].Address = c.Cameras[0].Address }, "cameras[1] (b).address: 127.0.90.1 used twice"},
		{"rtsp port", func(c *camsim.Config) { c.Cameras[0].RTSPPort = -1 }, "cameras[0] (a).rtsp_port: -1 out of range"},
		{"auth mode", func(c *camsim.Config) { c.Cameras[0].Auth = "basic" }, `cameras[0] (a).auth: "basic" is not wsse`},
		{"no password", func(c *camsim.Config) { c.Cameras[0].Password = "" }, "cameras[0] (a): username and password required"},
		{"digest algorithm", func(c *camsim.Config) { c.Cameras[0].DigestAlgorithms = []string{"SHA-1"} }, `digest_algorithms: "SHA-1" is not MD5 or SHA-256`},
		{"clock start", func(c *camsim.Config) { c.Cameras[0].ClockStart = "yesterday" }, `clock_start: "yesterday" is not RFC 3339`},
		{"scene", func(c *camsim.Config) { c.Cameras[0].Scene = "beach" }, `scene: "beach" is not ptz, badge or street`},
		{"source", func(c *camsim.Config) { c.Cameras[0].Source = "/nonexistent.avi" }, `source: "/nonexistent.avi" is not a readable video file`},
		{"fps", func(c *camsim.Config) { c.Cameras[0].FPS = 61 }, "fps: 61 out of 1..60"},
		{"odd size", func(c *camsim.Config) { c.Cameras[0].Width, c.Cameras[0].Height = 641, 360 }, "width/height 641x360 must be even"},
		{"day cycle", func(c *camsim.Config) { c.Cameras[0].DayCycle = camsim.Duration(time.Second) }, "cameras[0] (a).day_cycle: 1s must be 0 (constant daylight) or ≥ 10s"},
		{"negative day cycle", func(c *camsim.Config) { c.Cameras[0].DayCycle = camsim.Duration(-time.Minute) }, "day_cycle: -1m0s must be 0"},
		{"ptz speed", func(c *camsim.Config) { c.Cameras[0].PTZ = &camsim.PTZConfig{ZoomSpeed: -1} }, "cameras[0] (a).ptz: speeds must be positive"},
		{"preset token", func(c *camsim.Config) {
			c.Cameras[0].PTZ = &camsim.PTZConfig{Presets: []camsim.PresetConfig{{Token: "1"}, {Token: "1"}}}
		}, `ptz.presets[1].token: duplicate "1"`},
		{"preset position", func(c *camsim.Config) {
			c.Cameras[0].PTZ = &camsim.PTZConfig{Presets: []camsim.PresetConfig{{Token: "1", Zoom: -0.5}}}
		}, "ptz.presets[0]: position out of generic ranges"},
		{"first error wins", func(c *camsim.Config) { c.Cameras[0].Scene, c.Cameras[0].Auth = "beach", "basic" }, `cameras[0] (a).auth: "basic"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := camsim.Config{Cameras: []camsim.CameraConfig{validCam("a", "127.0.90.1"), validCam("b", "127.0.90.2")}}
			tc.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidateFillsDefaults(t *testing.T) {
	cam := validCam("a", "127.0.90.1")
	cam.PTZ = &camsim.PTZConfig{}
	cfg := camsim.Config{Cameras: []camsim.CameraConfig{cam}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.Discovery
	if d.UnicastPort != 3702 || d.Unicast == nil || !*d.Unicast || d.Group != "239.255.255.250:3702" {
		t.Errorf("discovery defaults: %+v", d)
	}
	c := cfg.Cameras[0]
	got := []any{c.Manufacturer, c.Model, c.Firmware, c.Serial, c.HardwareID, c.Hostname, c.Auth, strings.Join(c.DigestAlgorithms, ","),
		time.Duration(c.ClockWindow), c.Scene, c.FPS, c.Width, c.Height, c.Masks.MaxMasks, c.Masks.MaxPoints,
		c.PTZ.PanTiltSpeed, c.PTZ.ZoomSpeed, c.PTZ.MaxPresets}
	want := []any{"Velo-Sim", "SimCam", "1.0.0", "SIM-a", "sim-hw-1", "camsim-a", camsim.AuthEither, "SHA-256,MD5",
		5 * time.Second, "street", 15, 1920, 1080, 8, 16, 0.5, 0.25, 300}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("default %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if !strings.HasPrefix(c.Endpoint, "urn:uuid:") || len(c.Endpoint) != len("urn:uuid:")+36 {
		t.Errorf("endpoint %q", c.Endpoint)
	}
	// The endpoint derives from the serial: a second validation of the same
	// camera gives the same one.
	again := camsim.Config{Cameras: []camsim.CameraConfig{validCam("a", "127.0.90.1")}}
	if err := again.Validate(); err != nil || again.Cameras[0].Endpoint != c.Endpoint {
		t.Errorf("endpoint not stable: %q vs %q (%v)", again.Cameras[0].Endpoint, c.Endpoint, err)
	}
}

// day_cycle and traffic reach what the camera films.
func TestSceneStateFollowsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yml := "discovery: {unicast: false}\ncameras:\n  - {id: d, address: 127.0.99.24, username: u, password: p, no_video: true, day_cycle: 10m, traffic: true}\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := camsim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cam := camsim.StartConfigForTest(t, cfg).Camera("d")
	now := time.Now()
	if st := cam.SceneState(now); st.Light != 1 || st.IR || !st.Traffic {
		t.Errorf("at start: %+v, want daylight with traffic", st)
	}
	// 55 % into the 10 min day is the start of the IR night.
	if st := cam.SceneState(now.Add(330 * time.Second)); !st.IR || st.Light != 0 {
		t.Errorf("at 5m30s: %+v, want the IR night", st)
	}
	cam.TamperView(camsim.Tamper{Blur: 3})
	if st := cam.SceneState(now); st.Tamper.Blur != 3 {
		t.Errorf("view tamper not filmed: %+v", st)
	}
}
