package cameramask_test

import (
	"slices"
	"strings"
	"testing"

	"velo/agent/cameramask"
	"velo/agent/config"
	"velo/masking/maskspec"
	"velo/onvif"
	"velo/onvif/camsim"
)

// TestSyncPushesTheViewsMasks: the view's masks land on the camera in
// ONVIF coordinates with their styles and colours, a mask that is not the
// view's is removed, a second Sync changes nothing, and Check agrees.
func TestSyncPushesTheViewsMasks(t *testing.T) {
	sim := camsim.StartForTest(t, simCamera("push", "127.0.94.1"))
	cam := sim.Camera("push")
	cl := connect(t, cam)
	ctx := ctxT(t)
	foreign, err := cl.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: onvifPoly(0.1, 0.8, 0.2, 0.8, 0.2, 0.9), Type: "Color", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	view := fixedView(t, "push",
		maskspec.Mask{Name: "door", Polygon: poly(0.7, 0.1, 0.9, 0.1, 0.8, 0.4), Color: maskspec.RGBToYUV(255, 255, 255)},
		maskspec.Mask{Name: "window", Style: maskspec.StylePixelate, Polygon: poly(0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3)},
		maskspec.Mask{Name: "plate", Style: maskspec.StyleBlur, Polygon: poly(0.4, 0.5, 0.5, 0.45, 0.6, 0.5, 0.55, 0.6, 0.45, 0.6)},
		maskspec.Mask{Name: "red", Polygon: poly(0.4, 0.1, 0.6, 0.1, 0.5, 0.3), Color: maskspec.RGBToYUV(255, 0, 0)},
	)

	rep, err := cameramask.Sync(ctx, cl, view, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Drift() || rep.CameraUnsupported != "" || len(rep.Unsupported) != 0 || rep.Source != "vsc0" || rep.Profile != "main" {
		t.Fatalf("sync report = %+v", rep)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Token != foreign {
		t.Errorf("removed = %+v, want the mask %s that is not the view's", rep.Removed, foreign)
	}
	pushed := byName(rep)
	for _, name := range []string{"door", "window", "plate", "red"} {
		if pushed[name].Action != cameramask.ActionCreated || pushed[name].Token == "" {
			t.Errorf("%s: %+v, want created", name, pushed[name])
		}
	}
	if n := len(cam.Masks()); n != 4 {
		t.Fatalf("camera holds %d masks, want 4: %+v", n, cam.Masks())
	}
	// The simulator's own record: centred, y-up coordinates, types, colours.
	door := simMask(t, cam, pushed["door"].Token)
	if p := door.Points[2]; !closeTo(p[0], 0.6) || !closeTo(p[1], 0.2) || door.Type != "Color" || !door.HasCol || door.Color != [3]float64{235, 128, 128} || !door.Enabled {
		t.Errorf("door on the camera = %+v, want vertex 3 at (0.6,0.2), white Color", door)
	}
	if m := simMask(t, cam, pushed["window"].Token); m.Type != "Pixelated" || len(m.Points) != 4 {
		t.Errorf("window on the camera = %+v", m)
	}
	if m := simMask(t, cam, pushed["plate"].Token); m.Type != "Blurred" || len(m.Points) != 5 {
		t.Errorf("plate on the camera = %+v", m)
	}
	// Red is not in the camera's colour list (black, white): the nearest.
	if m := simMask(t, cam, pushed["red"].Token); m.Color != [3]float64{16, 128, 128} || !strings.Contains(pushed["red"].Note, "nearest") {
		t.Errorf("red on the camera = %+v, note %q", m, pushed["red"].Note)
	}

	again, err := cameramask.Sync(ctx, cl, view, "main")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range byName(again) {
		if p.Action != cameramask.ActionUnchanged || p.Token != pushed[name].Token {
			t.Errorf("second sync: %s = %+v, want unchanged %s", name, p, pushed[name].Token)
		}
	}
	if len(again.Pushed) != 4 || len(again.Removed) != 0 || again.Drift() || len(cam.Masks()) != 4 {
		t.Errorf("second sync = %+v; camera holds %d", again, len(cam.Masks()))
	}
	chk, err := cameramask.Check(ctx, cl, view, "")
	if err != nil || chk.Drift() || len(chk.Pushed) != 4 || chk.Pushed[0].Action != "" {
		t.Errorf("check = %+v, %v", chk, err)
	}
}

// TestCheckReportsDrift: masks deleted, moved, disabled, restyled or added
// on the camera side are reported; a rounding within tolerance is not;
// Sync repairs it all.
func TestCheckReportsDrift(t *testing.T) {
	sim := camsim.StartForTest(t, simCamera("drift", "127.0.94.2"))
	cam := sim.Camera("drift")
	cl := connect(t, cam)
	ctx := ctxT(t)
	view := fixedView(t, "drift",
		maskspec.Mask{Name: "a", Polygon: poly(0.05, 0.05, 0.2, 0.05, 0.2, 0.2, 0.05, 0.2)},
		maskspec.Mask{Name: "b", Polygon: poly(0.4, 0.1, 0.6, 0.1, 0.5, 0.3)},
		maskspec.Mask{Name: "c", Style: maskspec.StylePixelate, Polygon: poly(0.1, 0.5, 0.3, 0.5, 0.3, 0.7, 0.1, 0.7)},
		maskspec.Mask{Name: "d", Style: maskspec.StyleBlur, Polygon: poly(0.5, 0.5, 0.7, 0.5, 0.7, 0.7, 0.5, 0.7)},
	)
	rep, err := cameramask.Sync(ctx, cl, view, "")
	if err != nil || rep.Drift() {
		t.Fatalf("sync = %+v, %v", rep, err)
	}
	tok := map[string]string{}
	for name, p := range byName(rep) {
		tok[name] = p.Token
	}
	set := func(name string, mod func(*onvif.Mask)) {
		t.Helper()
		m := byName(rep)[name].Mask
		m.Token = tok[name]
		mod(&m)
		if err := cl.SetMask(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// A camera that rounds coordinates (here by 0.4 % of the frame) is
	// not drift.
	set("b", func(m *onvif.Mask) { m.Polygon = onvifPoly(0.404, 0.1, 0.604, 0.1, 0.504, 0.3) })
	if chk, err := cameramask.Check(ctx, cl, view, ""); err != nil || chk.Drift() {
		t.Fatalf("check after a rounding = %+v, %v", chk, err)
	}

	if err := cl.DeleteMask(ctx, tok["a"]); err != nil {
		t.Fatal(err)
	}
	set("b", func(m *onvif.Mask) { m.Polygon = onvifPoly(0.45, 0.1, 0.65, 0.1, 0.55, 0.3) })
	set("c", func(m *onvif.Mask) { m.Enabled = false })
	set("d", func(m *onvif.Mask) { m.Type, m.Color = "Color", &onvif.Color{X: 16, Y: 128, Z: 128} })
	extra, err := cl.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: onvifPoly(0.8, 0.8, 0.95, 0.8, 0.95, 0.95), Type: "Color", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}

	chk, err := cameramask.Check(ctx, cl, view, "")
	if err != nil {
		t.Fatal(err)
	}
	if !chk.Drift() || len(chk.Missing) != 1 || chk.Missing[0].Name != "a" || len(chk.Extra) != 1 || chk.Extra[0].Token != extra {
		t.Errorf("check: missing %+v extra %+v, want a and %s", chk.Missing, chk.Extra, extra)
	}
	changed := map[string][]string{}
	for _, c := range chk.Changed {
		changed[c.Name] = c.What
		if c.Got.Token != tok[c.Name] {
			t.Errorf("changed %s stands for camera mask %s, want %s", c.Name, c.Got.Token, tok[c.Name])
		}
	}
	want := map[string][]string{"b": {"polygon"}, "c": {"enabled"}, "d": {"type"}}
	for name, what := range want {
		if !slices.Equal(changed[name], what) {
			t.Errorf("changed %s: %v, want %v (all: %v)", name, changed[name], what, changed)
		}
	}
	if len(chk.Pushed) != 0 || len(cam.Masks()) != 4 {
		t.Errorf("check changed something or pushed = %+v; camera holds %d", chk.Pushed, len(cam.Masks()))
	}

	fix, err := cameramask.Sync(ctx, cl, view, "")
	if err != nil || fix.Drift() {
		t.Fatalf("repairing sync = %+v, %v", fix, err)
	}
	actions := map[string]string{}
	for name, p := range byName(fix) {
		actions[name] = p.Action
	}
	if actions["a"] != cameramask.ActionCreated || actions["b"] != cameramask.ActionUpdated || actions["c"] != cameramask.ActionUpdated || actions["d"] != cameramask.ActionUpdated {
		t.Errorf("repair actions = %v", actions)
	}
	if len(fix.Removed) != 1 || fix.Removed[0].Token != extra || len(cam.Masks()) != 4 {
		t.Errorf("removed %+v; camera holds %d", fix.Removed, len(cam.Masks()))
	}
	if m := simMask(t, cam, tok["d"]); m.Type != "Blurred" {
		t.Errorf("d on the camera after repair = %+v", m)
	}
	if chk, err := cameramask.Check(ctx, cl, view, ""); err != nil || chk.Drift() || len(chk.Pushed) != 4 {
		t.Errorf("check after repair = %+v, %v", chk, err)
	}
}

// TestLimitsRespected: what the camera cannot take (non-rectangles on a
// rectangle-only camera, too many points, too many masks) is reported and
// never pushed, and is not drift.
func TestLimitsRespected(t *testing.T) {
	sim := camsim.StartForTest(t,
		simCamera("rect", "127.0.94.3", func(c *camsim.CameraConfig) {
			c.Masks.RectangleOnly, c.Masks.MaxMasks = true, 2
		}),
		simCamera("few", "127.0.94.4", func(c *camsim.CameraConfig) { c.Masks.MaxPoints = 4 }))

	rect, ctx := sim.Camera("rect"), ctxT(t)
	cl := connect(t, rect)
	view := fixedView(t, "rect",
		maskspec.Mask{Name: "r1", Polygon: poly(0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3)},
		maskspec.Mask{Name: "tri", Polygon: poly(0.5, 0.1, 0.7, 0.1, 0.6, 0.3)},
		// A rectangle drawn from another corner, with a vertex on an edge.
		maskspec.Mask{Name: "r2", Style: maskspec.StylePixelate, Polygon: poly(0.6, 0.7, 0.4, 0.7, 0.4, 0.5, 0.5, 0.5, 0.6, 0.5)},
		maskspec.Mask{Name: "r3", Polygon: poly(0.8, 0.8, 0.9, 0.8, 0.9, 0.9, 0.8, 0.9)},
	)
	rep, err := cameramask.Sync(ctx, cl, view, "")
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, u := range rep.Unsupported {
		reasons[u.Name] = u.Reason
	}
	if len(reasons) != 2 || !strings.Contains(reasons["tri"], "rectangles only") || !strings.Contains(reasons["r3"], "at most 2 masks") {
		t.Errorf("unsupported = %v", reasons)
	}
	if pushed := byName(rep); len(pushed) != 2 || pushed["r1"].Token == "" || pushed["r2"].Token == "" || rep.Drift() {
		t.Errorf("rectangle-only sync = %+v", rep)
	}
	if n := len(rect.Masks()); n != 2 {
		t.Errorf("camera holds %d masks, want 2", n)
	}
	if chk, err := cameramask.Check(ctx, cl, view, ""); err != nil || chk.Drift() || len(chk.Unsupported) != 2 {
		t.Errorf("check = %+v, %v", chk, err)
	}

	few := sim.Camera("few")
	fv := fixedView(t, "few",
		maskspec.Mask{Name: "quad", Polygon: poly(0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3)},
		maskspec.Mask{Name: "pent", Polygon: poly(0.4, 0.5, 0.5, 0.45, 0.6, 0.5, 0.55, 0.6, 0.45, 0.6)},
	)
	rep, err = cameramask.Sync(ctx, connect(t, few), fv, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unsupported) != 1 || rep.Unsupported[0].Name != "pent" || !strings.Contains(rep.Unsupported[0].Reason, "5 points, the camera takes at most 4") {
		t.Errorf("unsupported = %+v", rep.Unsupported)
	}
	if len(rep.Pushed) != 1 || len(few.Masks()) != 1 || rep.Drift() {
		t.Errorf("sync = %+v; camera holds %d", rep, len(few.Masks()))
	}
}

// TestCamerasWithoutCameraMasks: a camera without Media2 and a camera
// with presets report why camera masks are not used, without error, and
// the camera is left untouched.
func TestCamerasWithoutCameraMasks(t *testing.T) {
	sim := camsim.StartForTest(t,
		simCamera("nom2", "127.0.94.5", func(c *camsim.CameraConfig) { c.Masks.Disabled = true }),
		simCamera("ptz", "127.0.94.6", func(c *camsim.CameraConfig) {
			c.Scene = "ptz"
			c.PTZ = &camsim.PTZConfig{Presets: []camsim.PresetConfig{{Token: "1", Name: "gate"}}}
		}))
	ctx := ctxT(t)
	view := fixedView(t, "nom2", maskspec.Mask{Name: "door", Polygon: poly(0.1, 0.1, 0.3, 0.1, 0.2, 0.3)})
	nom2 := connect(t, sim.Camera("nom2"))
	for name, run := range map[string]func() (cameramask.Report, error){
		"sync":  func() (cameramask.Report, error) { return cameramask.Sync(ctx, nom2, view, "") },
		"check": func() (cameramask.Report, error) { return cameramask.Check(ctx, nom2, view, "") },
	} {
		rep, err := run()
		if err != nil || rep.CameraUnsupported != cameramask.ReasonNoMedia2 || len(rep.Pushed) != 0 || rep.Drift() {
			t.Errorf("%s without Media2 = %+v, %v", name, rep, err)
		}
	}

	ptz := sim.Camera("ptz")
	cl := connect(t, ptz)
	installer, err := cl.CreateMask(ctx, onvif.Mask{ConfigurationToken: "vsc0", Polygon: onvifPoly(0.1, 0.1, 0.3, 0.1, 0.2, 0.3), Type: "Color", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	pv := &config.CameraConfig{ID: "ptz", Presets: []config.PresetConfig{{Token: "1", Masks: view.Masks}}}
	rep, err := cameramask.Sync(ctx, cl, pv, "")
	if err != nil || rep.CameraUnsupported != cameramask.ReasonPresets || len(rep.Removed) != 0 {
		t.Errorf("sync with presets = %+v, %v", rep, err)
	}
	if ms := ptz.Masks(); len(ms) != 1 || ms[0].Token != installer {
		t.Errorf("camera with presets: masks %+v, want its own %s untouched", ms, installer)
	}
}

// TestErrorsNameCameraAndOperation: failures say which camera and which
// operation, and never carry the password.
func TestErrorsNameCameraAndOperation(t *testing.T) {
	sim := camsim.StartForTest(t, simCamera("err", "127.0.94.7"))
	cl := connect(t, sim.Camera("err"))
	ctx := ctxT(t)
	view := fixedView(t, "err", maskspec.Mask{Name: "door", Polygon: poly(0.1, 0.1, 0.3, 0.1, 0.2, 0.3)})
	_, err := cameramask.Sync(ctx, cl, view, "nope")
	if err == nil || !strings.Contains(err.Error(), `camera "err"`) || !strings.Contains(err.Error(), `profile "nope" not found`) {
		t.Errorf("unknown profile: %v", err)
	}
	sim.Close()
	for _, run := range []func() error{
		func() error { _, err := cameramask.Sync(ctx, cl, view, ""); return err },
		func() error { _, err := cameramask.Check(ctx, cl, view, ""); return err },
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), `camera "err"`) || !strings.Contains(err.Error(), "GetProfiles") || strings.Contains(err.Error(), testPass) {
			t.Errorf("camera gone: %v", err)
		}
	}
}
