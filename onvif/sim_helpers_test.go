package onvif_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"velo/onvif"
	"velo/onvif/camsim"
)

// Each test camera gets its own loopback address, away from the demo's
// 127.0.0.11–13.
var nextAddr atomic.Int32

func testAddr() string {
	n := nextAddr.Add(1)
	return fmt.Sprintf("127.0.%d.%d", 100+n/250, 1+n%250)
}

const (
	testUser = "operator"
	testPass = "s3cret-Pa55"
)

// simCam returns a camera config with defaults for tests: own address, free
// ports, no video, PTZ with three presets.
func simCam(id string, mod ...func(*camsim.CameraConfig)) camsim.CameraConfig {
	c := camsim.CameraConfig{
		ID: id, Address: testAddr(), NoVideo: true,
		Username: testUser, Password: testPass, Auth: camsim.AuthEither,
		Scene: "ptz",
		PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{
			{Token: "1", Name: "entrance", Pan: 0, Tilt: 0, Zoom: 0},
			{Token: "2", Name: "door", Pan: 0.5, Tilt: 0.25, Zoom: 0.5},
			{Token: "3", Name: "door", Pan: -0.5, Tilt: -0.25, Zoom: 0.1},
		}},
	}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func newClient(t *testing.T, cam *camsim.Camera, mod ...func(*onvif.Config)) *onvif.Client {
	t.Helper()
	cfg := onvif.Config{XAddr: cam.XAddr(), Username: testUser, Password: testPass, Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := onvif.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
