package onvif_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

func pos(pan, tilt, zoom float64) onvif.PTZVector {
	return onvif.PTZVector{PanTilt: &onvif.Vector2D{X: onvif.Float(pan), Y: onvif.Float(tilt)}, Zoom: &onvif.Vector1D{X: onvif.Float(zoom)}}
}

func near(v *onvif.PTZVector, pan, tilt, zoom, tol float64) bool {
	if v == nil || v.PanTilt == nil || v.Zoom == nil {
		return false
	}
	return math.Abs(float64(v.PanTilt.X)-pan) <= tol && math.Abs(float64(v.PanTilt.Y)-tilt) <= tol && math.Abs(float64(v.Zoom.X)-zoom) <= tol
}

// waitPosition polls GetStatus until the position is near the target,
// comparing positions (not MoveStatus, which some firmware never updates).
func waitPosition(ctx context.Context, t *testing.T, c *onvif.Client, pan, tilt, zoom float64) onvif.PTZStatus {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var st onvif.PTZStatus
	for {
		var err error
		st, err = c.GetStatus(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		if near(st.Position, pan, tilt, zoom, 1e-6) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("position %v never reached (%.3g,%.3g,%.3g)", st.Position, pan, tilt, zoom)
		case <-tick.C:
		}
	}
}

func TestPTZReadOperations(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("ptz1"))
	c := newClient(t, sim.Camera("ptz1"))
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := c.GetNodes(ctx)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("nodes = %+v, %v", nodes, err)
	}
	n := nodes[0]
	if n.Token != "ptznode0" || n.MaxPresets != 300 || !n.HomeSupported || len(n.Spaces.AbsolutePanTilt) != 1 || len(n.Spaces.AbsoluteZoom) != 1 {
		t.Errorf("node = %+v", n)
	}
	cfgs, err := c.GetConfigurations(ctx)
	if err != nil || len(cfgs) != 1 || cfgs[0].Token != "ptzcfg0" || cfgs[0].NodeToken != "ptznode0" {
		t.Fatalf("configurations = %+v, %v", cfgs, err)
	}
	if cfgs[0].DefAbsPanTilt != onvif.SpacePanTiltGeneric || cfgs[0].PanTiltLimit() == nil || cfgs[0].ZoomLimit() == nil {
		t.Errorf("configuration = %+v", cfgs[0])
	}
	opt, err := c.GetConfigurationOptions(ctx, "ptzcfg0")
	if err != nil {
		t.Fatal(err)
	}
	pt := opt.Spaces.AbsolutePanTilt
	if len(pt) != 1 || pt[0].URI != onvif.SpacePanTiltGeneric || pt[0].XRange != (onvif.FloatRange{Min: -1, Max: 1}) || pt[0].YRange == nil || *pt[0].YRange != (onvif.FloatRange{Min: -1, Max: 1}) {
		t.Errorf("pan/tilt spaces = %+v", pt)
	}
	if z := opt.Spaces.AbsoluteZoom; len(z) != 1 || z[0].XRange != (onvif.FloatRange{Min: 0, Max: 1}) {
		t.Errorf("zoom spaces = %+v", z)
	}
	if opt.PTZTimeout == nil || opt.PTZTimeout.Max != "PT60S" {
		t.Errorf("timeout = %+v", opt.PTZTimeout)
	}
	presets, err := c.GetPresets(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	// Duplicate names ("door" twice) must both survive: keyed by token.
	if len(presets) != 3 || presets[1].Name != "door" || presets[2].Name != "door" || presets[1].Token == presets[2].Token {
		t.Fatalf("presets = %+v", presets)
	}
	if !near(presets[1].Position, 0.5, 0.25, 0.5, 1e-9) {
		t.Errorf("preset 2 position = %v", presets[1].Position)
	}
	if _, err := c.GetConfigurationOptions(ctx, "nope"); !errors.Is(err, onvif.ErrInvalidArgument) {
		t.Errorf("bad token: %v", err)
	}
}

func TestPTZMotion(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("ptz2", func(c *camsim.CameraConfig) { c.PTZ.PanTiltSpeed, c.PTZ.ZoomSpeed = 1, 1 }))
	cam := sim.Camera("ptz2")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.GotoPreset(ctx, "main", "2"); err != nil {
		t.Fatal(err)
	}
	// The motor moves at a finite speed: right after the command the camera
	// is on its way, and says so.
	st, err := c.GetStatus(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if near(st.Position, 0.5, 0.25, 0.5, 1e-6) || st.MoveStatus.PanTilt != "MOVING" {
		t.Errorf("just after GotoPreset: %v %+v", st.Position, st.MoveStatus)
	}
	st = waitPosition(ctx, t, c, 0.5, 0.25, 0.5)
	if st.MoveStatus.PanTilt != "IDLE" || st.MoveStatus.Zoom != "IDLE" {
		t.Errorf("at preset: move status %+v", st.MoveStatus)
	}
	if err := c.GotoPreset(ctx, "main", "99"); !errors.Is(err, onvif.Subcode("NoToken")) {
		t.Errorf("unknown preset: %v", err)
	}
	if err := c.AbsoluteMove(ctx, "main", pos(-0.2, 0.1, 0.3)); err != nil {
		t.Fatal(err)
	}
	waitPosition(ctx, t, c, -0.2, 0.1, 0.3)
	tok, err := c.SetPreset(ctx, "main", "new-view", "")
	if err != nil || tok == "" {
		t.Fatalf("SetPreset = %q, %v", tok, err)
	}
	if _, err := c.SetPreset(ctx, "main", "new-view", ""); !errors.Is(err, onvif.Subcode("PresetExist")) {
		t.Errorf("duplicate name: %v", err)
	}
	ps, _ := c.GetPresets(ctx, "main")
	var found bool
	for _, p := range ps {
		if p.Token == tok {
			found = near(p.Position, -0.2, 0.1, 0.3, 1e-6)
		}
	}
	if !found {
		t.Errorf("new preset %s not listed at the current position: %+v", tok, ps)
	}
	if err := c.RemovePreset(ctx, "main", tok); err != nil {
		t.Fatal(err)
	}
	if ps, _ := c.GetPresets(ctx, "main"); len(ps) != 3 {
		t.Errorf("after remove: %d presets", len(ps))
	}
	if err := c.AbsoluteMove(ctx, "main", pos(2, 0, 0)); !errors.Is(err, onvif.ErrInvalidArgument) {
		t.Errorf("out-of-range move: %v", err)
	}
}

func TestPTZLimitsBoundMotion(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("lim", func(c *camsim.CameraConfig) { c.PTZ.PanTiltSpeed, c.PTZ.ZoomSpeed = 4, 4 }))
	cam := sim.Camera("lim")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetConfiguration(ctx, "ptzcfg0")
	if err != nil {
		t.Fatal(err)
	}
	pt := &onvif.Limits{XRange: onvif.FloatRange{Min: -0.1, Max: 0.2}, YRange: &onvif.FloatRange{Min: -0.05, Max: 0.05}}
	z := &onvif.Limits{XRange: onvif.FloatRange{Min: 0, Max: 0.4}}
	back, err := c.SetLimits(ctx, "ptzcfg0", pt, z)
	if err != nil {
		t.Fatal(err)
	}
	if l := back.PanTiltLimit(); l == nil || l.XRange.Max != 0.2 || l.YRange.Min != -0.05 || l.URI != onvif.SpacePanTiltGeneric {
		t.Errorf("read back pan/tilt limits %+v", l)
	}
	// Read-modify-write kept the rest of the configuration.
	if back.Name != before.Name || back.NodeToken != before.NodeToken || back.DefaultTimeout != before.DefaultTimeout || back.DefAbsZoom != before.DefAbsZoom {
		t.Errorf("configuration changed beyond limits:\n before %+v\n after  %+v", before, back)
	}
	p, tl, zl := cam.Limits()
	if p.Max != 0.2 || tl.Min != -0.05 || zl.Max != 0.4 {
		t.Errorf("camera limits = %v %v %v", p, tl, zl)
	}
	// Moves are bounded by the limits.
	if err := c.AbsoluteMove(ctx, "main", pos(0.9, 0.9, 1)); err != nil {
		t.Fatal(err)
	}
	waitPosition(ctx, t, c, 0.2, 0.05, 0.4)
	if err := c.GotoPreset(ctx, "main", "3"); err != nil { // (-0.5,-0.25,0.1) → clamped
		t.Fatal(err)
	}
	waitPosition(ctx, t, c, -0.1, -0.05, 0.1)
	// INF disables a bound and reads back as INF.
	inf := &onvif.Limits{XRange: onvif.FloatRange{Min: onvif.Float(math.Inf(-1)), Max: onvif.Float(math.Inf(1))}, YRange: &onvif.FloatRange{Min: -1, Max: 1}}
	back, err = c.SetLimits(ctx, "ptzcfg0", inf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := back.PanTiltLimit(); !math.IsInf(float64(l.XRange.Max), 1) {
		t.Errorf("INF did not read back: %+v", l)
	}
	if l := back.ZoomLimit(); l.XRange.Max != 0.4 {
		t.Errorf("zoom limits changed by a pan/tilt-only write: %+v", l)
	}
}

func TestPTZLimitsUnsupported(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("nolim", func(c *camsim.CameraConfig) { c.PTZ.NoLimits = true }))
	c := newClient(t, sim.Camera("nolim"))
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.SetLimits(ctx, "ptzcfg0", &onvif.Limits{XRange: onvif.FloatRange{Min: 0, Max: 0.1}, YRange: &onvif.FloatRange{Min: 0, Max: 0.1}}, nil)
	if !errors.Is(err, onvif.ErrNotSupported) {
		t.Errorf("err = %v, want ErrNotSupported", err)
	}
}

func TestPTZTamperIgnoresLimitsAndIsVisible(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("tam", func(c *camsim.CameraConfig) { c.PTZ.PanTiltSpeed = 4 }))
	cam := sim.Camera("tam")
	c := newClient(t, cam)
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetLimits(ctx, "ptzcfg0", &onvif.Limits{XRange: onvif.FloatRange{Min: -0.1, Max: 0.1}, YRange: &onvif.FloatRange{Min: -0.1, Max: 0.1}}, nil); err != nil {
		t.Fatal(err)
	}
	cam.Tamper(camsim.Position{Pan: 0.8, Tilt: -0.5, Zoom: 0})
	waitPosition(ctx, t, c, 0.8, -0.5, 0)
}

// Hikvision: MoveStatus never leaves IDLE. Compare positions instead
// (firmware-notes/hikvision.md).
func TestPTZMoveStatusStuck(t *testing.T) {
	sim := camsim.StartForTest(t, simCam("stuck", func(c *camsim.CameraConfig) { c.Quirk.MoveStatusStuck = true; c.PTZ.PanTiltSpeed = 0.5 }))
	c := newClient(t, sim.Camera("stuck"))
	ctx := ctxT(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.GotoPreset(ctx, "main", "2"); err != nil {
		t.Fatal(err)
	}
	st, err := c.GetStatus(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if st.MoveStatus.PanTilt != "IDLE" {
		t.Fatalf("quirk off? MoveStatus %+v", st.MoveStatus)
	}
	if near(st.Position, 0.5, 0.25, 0.5, 1e-6) {
		t.Fatal("camera already there: cannot tell IDLE from arrived")
	}
	waitPosition(ctx, t, c, 0.5, 0.25, 0.5)
}
