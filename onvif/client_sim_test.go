package onvif_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

func TestDeviceOperations(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("dev1", func(c *camsim.CameraConfig) {
		c.Manufacturer, c.Model, c.Firmware, c.Serial, c.HardwareID, c.Hostname = "Acme", "X1", "3.2.1", "SN123", "HW9", "cam-dev1"
	}))
	cam := sim.Camera("dev1")
	c := newClient(t, cam)
	ctx := ctxT(t)

	st, err := c.GetSystemDateAndTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(st.UTC); d > 3*time.Second || d < -3*time.Second {
		t.Errorf("camera UTC %v too far from now", st.UTC)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := c.GetDeviceInformation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := onvif.DeviceInfo{Manufacturer: "Acme", Model: "X1", FirmwareVersion: "3.2.1", SerialNumber: "SN123", HardwareID: "HW9"}
	if info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}
	svcs, err := c.GetServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range svcs {
		got[s.Namespace] = true
		if s.Version.Major != 2 {
			t.Errorf("service %s version %+v", s.Namespace, s.Version)
		}
	}
	for _, ns := range []string{onvif.NSDevice, onvif.NSMedia, onvif.NSMedia2, onvif.NSPTZ} {
		if !got[ns] {
			t.Errorf("service %s missing from %v", ns, got)
		}
	}
	if !c.HasService(onvif.NSMedia2) || !c.HasService(onvif.NSPTZ) {
		t.Error("Connect did not record Media2/PTZ")
	}
	caps, err := c.GetCapabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(caps.Media, "/onvif/media_service") || !strings.HasSuffix(caps.PTZ, "/onvif/ptz_service") {
		t.Errorf("capabilities = %+v", caps)
	}
	h, err := c.GetHostname(ctx)
	if err != nil || h != "cam-dev1" {
		t.Errorf("hostname = %q, %v", h, err)
	}
}

func TestAuthClockSkew(t *testing.T) {
	cases := []struct {
		name  string
		skew  time.Duration
		start string
	}{
		{"plus 1h", time.Hour, ""},
		{"minus 1h", -time.Hour, ""},
		{"1970", 0, "1970-01-01T00:00:00Z"},
		{"in sync", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := camsim.StartForTest(t, simCam("skew", func(c *camsim.CameraConfig) {
				c.ClockSkew, c.ClockStart, c.Auth, c.ReplayProtection = camsim.Duration(tc.skew), tc.start, camsim.AuthWSSE, true
			}))
			cam := sim.Camera("skew")
			wantOff := cam.Clock().Sub(time.Now())
			ctx := ctxT(t)

			// A client that never synced: the first signed call is refused
			// (NotAuthorized), the client re-syncs once and succeeds.
			c := newClient(t, cam)
			if _, err := c.GetDeviceInformation(ctx); err != nil {
				t.Fatalf("GetDeviceInformation: %v", err)
			}
			off, ok := c.ClockOffset()
			if abs(wantOff) > 10*time.Second && (!ok || math.Abs((off-wantOff).Seconds()) > 1.5) {
				t.Errorf("offset = %v (synced %t), want ≈ %v", off, ok, wantOff)
			}
			syncs := cam.Calls("GetSystemDateAndTime")
			if abs(wantOff) > 10*time.Second && syncs != 1 {
				t.Errorf("GetSystemDateAndTime called %d times, want 1 re-sync", syncs)
			}
			if abs(wantOff) <= 10*time.Second && syncs != 0 {
				t.Errorf("in-sync camera: GetSystemDateAndTime called %d times, want 0", syncs)
			}
			// Later calls use the offset: no more syncs.
			if _, err := c.GetHostname(ctx); err != nil {
				t.Fatal(err)
			}
			if n := cam.Calls("GetSystemDateAndTime"); n != syncs {
				t.Errorf("extra re-sync: %d → %d", syncs, n)
			}
		})
	}
}

func TestAuthClockMovesAfterSync(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("drift", func(c *camsim.CameraConfig) { c.Auth = camsim.AuthWSSE }))
	cam := sim.Camera("drift")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	cam.SetClockSkew(-2 * time.Hour) // someone set the camera clock
	if _, err := c.GetDeviceInformation(ctx); err != nil {
		t.Fatalf("after clock change: %v", err)
	}
	if n := cam.Calls("GetSystemDateAndTime"); n != 2 {
		t.Errorf("GetSystemDateAndTime calls = %d, want 2 (connect + one re-sync)", n)
	}
}

func TestAuthFailures(t *testing.T) {
	for _, mode := range []camsim.AuthMode{camsim.AuthWSSE, camsim.AuthDigest, camsim.AuthEither} {
		t.Run(string(mode), func(t *testing.T) {
			sim := camsim.StartForTest(t, simCam("bad", func(c *camsim.CameraConfig) { c.Auth = mode }))
			cam := sim.Camera("bad")
			c := newClient(t, cam, func(cfg *onvif.Config) { cfg.Password = "wrong-password-xyz" })
			_, err := c.GetDeviceInformation(ctxT(t))
			if !errors.Is(err, onvif.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			if strings.Contains(err.Error(), "wrong-password-xyz") {
				t.Errorf("error leaks the password: %v", err)
			}
			if n := cam.Calls("GetSystemDateAndTime"); n > 1 {
				t.Errorf("re-synced %d times, want at most once", n)
			}
			// Without credentials: also refused, and anonymous identify says so.
			anon := newClient(t, cam, func(cfg *onvif.Config) { cfg.Username, cfg.Password = "", "" })
			if _, err := anon.GetDeviceInformation(ctxT(t)); !errors.Is(err, onvif.ErrUnauthorized) {
				t.Errorf("anonymous: err = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestDigestOnly(t *testing.T) {
	for _, algs := range [][]string{{"MD5"}, {"SHA-256"}, {"SHA-256", "MD5"}} {
		t.Run(strings.Join(algs, "+"), func(t *testing.T) {
			sim := camsim.StartForTest(t, simCam("dig", func(c *camsim.CameraConfig) {
				c.Auth, c.DigestAlgorithms = camsim.AuthDigest, algs
				c.ClockSkew = camsim.Duration(time.Hour) // WS-Security is ignored by a digest-only camera
			}))
			cam := sim.Camera("dig")
			c := newClient(t, cam)
			ctx := ctxT(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ { // nonce count advances, challenge reused
				if _, err := c.GetDeviceInformation(ctx); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if _, err := c.GetProfiles(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMedia(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("med", func(c *camsim.CameraConfig) { c.NoVideo = false; c.FPS = 5; c.Width, c.Height = 320, 180 }))
	cam := sim.Camera("med")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := c.GetProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Token != "main" || ps[1].Token != "sub" {
		t.Fatalf("profiles = %+v", ps)
	}
	e := ps[0].Encoder
	if e == nil || e.Encoding != "H264" || e.Resolution.Width != 320 || e.Resolution.Height != 180 || e.RateControl == nil || e.RateControl.FrameRateLimit != 5 || e.H264 == nil || e.H264.GovLength != 10 {
		t.Errorf("main encoder = %+v", e)
	}
	if ps[0].Source == nil || ps[0].Source.Token != "vsc0" || ps[0].Source.Bounds.Width != 320 {
		t.Errorf("main source = %+v", ps[0].Source)
	}
	if ps[0].PTZ == nil || ps[0].PTZ.Token != "ptzcfg0" {
		t.Errorf("main PTZ = %+v", ps[0].PTZ)
	}
	cc := cam.Config()
	for _, p := range ps {
		u, err := c.GetStreamURI(ctx, p.Token)
		if err != nil {
			t.Fatal(err)
		}
		want := "rtsp://" + cc.Address + ":" + itoa(cc.RTSPPort) + "/" + p.Token
		if u != want {
			t.Errorf("stream uri = %q, want %q", u, want)
		}
		s, err := c.GetSnapshotURI(ctx, p.Token)
		if err != nil || !strings.HasSuffix(s, "/snapshot/"+p.Token+".jpg") {
			t.Errorf("snapshot uri = %q, %v", s, err)
		}
	}
	if _, err := c.GetStreamURI(ctx, "nope"); !errors.Is(err, onvif.ErrInvalidArgument) || !errors.Is(err, onvif.Subcode("NoProfile")) {
		t.Errorf("unknown profile: %v", err)
	}
}

func TestMediaURIStripsCredentials(t *testing.T) {
	if got := onvif.RedactURL("rtsp://admin:hunter2@192.0.2.1:554/s?x=1"); got != "rtsp://192.0.2.1:554/s?x=1" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := onvif.RedactURL("rtsp://admin:hun%ter2@192.0.2.1/s"); strings.Contains(got, "hun") {
		t.Errorf("RedactURL of unparseable URL leaks: %q", got)
	}
}

func TestCoordinateConversion(t *testing.T) {
	cases := []struct {
		img  onvif.ImagePoint
		onv  onvif.Point
		name string
	}{
		{onvif.ImagePoint{0, 0}, onvif.Point{-1, 1}, "top-left"},
		{onvif.ImagePoint{1, 1}, onvif.Point{1, -1}, "bottom-right"},
		{onvif.ImagePoint{0.5, 0.5}, onvif.Point{0, 0}, "centre"},
		{onvif.ImagePoint{0.75, 0.25}, onvif.Point{0.5, 0.5}, "upper right quadrant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.img.ToONVIF(); got != tc.onv {
				t.Errorf("ToONVIF(%v) = %v, want %v", tc.img, got, tc.onv)
			}
			if got := tc.onv.ToImage(); got != tc.img {
				t.Errorf("ToImage(%v) = %v, want %v", tc.onv, got, tc.img)
			}
		})
	}
}

func imgPoly(pts ...float64) []onvif.Point {
	var out []onvif.Point
	for i := 0; i+1 < len(pts); i += 2 {
		out = append(out, onvif.ImagePoint{X: pts[i], Y: pts[i+1]}.ToONVIF())
	}
	return out
}

func TestMedia2Masks(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("m2", func(c *camsim.CameraConfig) { c.Masks.MaxMasks, c.Masks.MaxPoints = 2, 6 }))
	cam := sim.Camera("m2")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	opt, err := c.GetMaskOptions(ctx, "vsc0")
	if err != nil {
		t.Fatal(err)
	}
	if opt.MaxMasks != 2 || opt.MaxPoints != 6 || strings.Join(opt.Types, ",") != "Color,Pixelated,Blurred" || opt.RectangleOnly || len(opt.Colors) != 2 {
		t.Errorf("options = %+v", opt)
	}
	// A triangle over the badge reader, in Velo's image coordinates.
	tri := imgPoly(0.7, 0.1, 0.9, 0.1, 0.8, 0.4)
	tok, err := c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: tri, Type: "Color", Color: &onvif.Color{X: 16, Y: 128, Z: 128}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.GetMasks(ctx, "vsc0")
	if err != nil || len(ms) != 1 || ms[0].Token != tok {
		t.Fatalf("masks = %+v, %v", ms, err)
	}
	m := ms[0]
	if m.Type != "Color" || !m.Enabled || m.Color == nil || m.Color.X != 16 || len(m.Polygon) != 3 {
		t.Errorf("mask read back = %+v", m)
	}
	if p := m.Polygon[2].ToImage(); math.Abs(p.X-0.8) > 1e-9 || math.Abs(p.Y-0.4) > 1e-9 {
		t.Errorf("vertex 3 read back at %v, want (0.8,0.4)", p)
	}
	// The camera holds them in ONVIF coordinates: centred, y up.
	if sm := cam.Masks()[0]; math.Abs(sm.Points[2][0]-0.6) > 1e-9 || math.Abs(sm.Points[2][1]-0.2) > 1e-9 {
		t.Errorf("camera stored %v, want (0.6, 0.2)", sm.Points[2])
	}
	m.Type, m.Enabled = "Pixelated", false
	if err := c.SetMask(ctx, m); err != nil {
		t.Fatal(err)
	}
	ms, _ = c.GetMasks(ctx, "vsc0")
	if len(ms) != 1 || ms[0].Type != "Pixelated" || ms[0].Enabled {
		t.Errorf("after SetMask: %+v", ms)
	}
	if _, err := c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: tri, Type: "Blurred", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: tri, Type: "Color", Enabled: true})
	if !errors.Is(err, onvif.Subcode("MaxMasks")) {
		t.Errorf("third mask: err = %v, want ter:MaxMasks", err)
	}
	seven := imgPoly(0.1, 0.1, 0.2, 0.1, 0.3, 0.2, 0.3, 0.3, 0.2, 0.4, 0.1, 0.3, 0.05, 0.2)
	if err := c.DeleteMask(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: seven, Type: "Color", Enabled: true})
	if !errors.Is(err, onvif.ErrInvalidArgument) || !errors.Is(err, onvif.Subcode("InvalidPolygon")) {
		t.Errorf("7-point polygon: err = %v, want InvalidPolygon", err)
	}
	if err := c.DeleteMask(ctx, tok); !errors.Is(err, onvif.Subcode("NoToken")) {
		t.Errorf("delete twice: err = %v, want NoToken", err)
	}
	if _, err := c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: tri[:2], Type: "Color"}); !errors.Is(err, onvif.ErrInvalidArgument) {
		t.Errorf("2-point polygon accepted by client: %v", err)
	}
}

func TestMedia2RectangleOnlyReadBack(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("rect", func(c *camsim.CameraConfig) { c.Masks.RectangleOnly = true }))
	c := newClient(t, sim.Camera("rect"))
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: imgPoly(0.2, 0.2, 0.6, 0.3, 0.3, 0.7), Type: "Color", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.GetMasks(ctx, "vsc0")
	if err != nil || len(ms) != 1 || ms[0].Token != tok {
		t.Fatalf("masks %+v %v", ms, err)
	}
	if len(ms[0].Polygon) != 4 {
		t.Fatalf("camera kept %d points, want its bounding rectangle", len(ms[0].Polygon))
	}
	var minX, maxX, minY, maxY = 1.0, 0.0, 1.0, 0.0
	for _, p := range ms[0].Polygon {
		ip := p.ToImage()
		minX, maxX, minY, maxY = math.Min(minX, ip.X), math.Max(maxX, ip.X), math.Min(minY, ip.Y), math.Max(maxY, ip.Y)
	}
	if math.Abs(minX-0.2) > 1e-9 || math.Abs(maxX-0.6) > 1e-9 || math.Abs(minY-0.2) > 1e-9 || math.Abs(maxY-0.7) > 1e-9 {
		t.Errorf("rectangle = x[%g,%g] y[%g,%g]", minX, maxX, minY, maxY)
	}
}

func TestMedia2Absent(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("nom2", func(c *camsim.CameraConfig) { c.Masks.Disabled = true }))
	c := newClient(t, sim.Camera("nom2"))
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if c.HasService(onvif.NSMedia2) {
		t.Error("Media2 reported")
	}
	if _, err := c.GetMasks(ctx, "vsc0"); !errors.Is(err, onvif.ErrNotSupported) {
		t.Errorf("GetMasks without Media2: %v", err)
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func itoa(i int) string { return strconv.Itoa(i) }
