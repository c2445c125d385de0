package cameramask_test

import (
	"context"
	"math"
	"testing"
	"time"

	"velo/agent/cameramask"
	"velo/agent/config"
	"velo/masking/maskspec"
	"velo/onvif"
	"velo/onvif/camsim"
)

const (
	testUser = "installer"
	testPass = "pw-cameramask-7Q"
)

// simCamera is a fixed camera without video (the masks need none).
func simCamera(id, addr string, mod ...func(*camsim.CameraConfig)) camsim.CameraConfig {
	c := camsim.CameraConfig{ID: id, Address: addr, NoVideo: true, Username: testUser, Password: testPass, Scene: "street"}
	for _, m := range mod {
		m(&c)
	}
	return c
}

// connect returns a connected client for a simulated camera.
func connect(t *testing.T, cam *camsim.Camera) *onvif.Client {
	t.Helper()
	c, err := onvif.NewClient(onvif.Config{XAddr: cam.XAddr(), Username: testUser, Password: testPass, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixedView is a fixed camera's configuration with masks, validated (so
// defaults are filled) as the config loader does.
func fixedView(t *testing.T, id string, masks ...maskspec.Mask) *config.CameraConfig {
	t.Helper()
	set := maskspec.MaskSet{Camera: id, Masks: masks}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
	return &config.CameraConfig{ID: id, Masks: set.Masks, Password: config.Secret(testPass)}
}

// poly builds a polygon from x,y pairs in image coordinates.
func poly(xy ...float64) []maskspec.Point {
	var out []maskspec.Point
	for i := 0; i+1 < len(xy); i += 2 {
		out = append(out, maskspec.Point{X: xy[i], Y: xy[i+1]})
	}
	return out
}

// onvifPoly builds an ONVIF polygon from x,y pairs in image coordinates.
func onvifPoly(xy ...float64) []onvif.Point {
	var out []onvif.Point
	for _, p := range poly(xy...) {
		out = append(out, onvif.ImagePoint{X: p.X, Y: p.Y}.ToONVIF())
	}
	return out
}

// byName indexes a report's pushed masks by name.
func byName(r cameramask.Report) map[string]cameramask.Pushed {
	out := map[string]cameramask.Pushed{}
	for _, p := range r.Pushed {
		out[p.Name] = p
	}
	return out
}

// simMask returns the simulator's own record of the mask with token tok.
func simMask(t *testing.T, cam *camsim.Camera, tok string) camsim.Mask {
	t.Helper()
	for _, m := range cam.Masks() {
		if m.Token == tok {
			return m
		}
	}
	t.Fatalf("camera holds no mask %q (holds %+v)", tok, cam.Masks())
	return camsim.Mask{}
}

func closeTo(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
