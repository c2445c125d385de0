package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/console"
)

// A console preview outside commissioning shows a camera only while it
// streams at the approved view asked for: a PTZ camera at another preset,
// not locked, or not streaming gets console.ErrNotAtView (409), and no
// frame is taken (the pipeline is nil here: touching it would panic).
func TestConsolePreviewOnlyAtTheStreamingView(t *testing.T) {
	dir := t.TempDir()
	text := `site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false}
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:1"}
cameras:
  - id: c
    purpose: p
    match: {serial: SER-C}
    xaddr: http://127.0.0.1:1/onvif/device_service
    username: velo
    password_file: cam.pw
    presets:
      - {token: "1", position: {pan: 0, tilt: 0, zoom: 0}, approval: {by: A, date: 2026-01-01, document: D}}
      - {token: "2", position: {pan: 0.5, tilt: 0, zoom: 0}, approval: {by: A, date: 2026-01-01, document: D}}
`
	for name, s := range map[string]string{"cam.pw": "pw\n", "site.yaml": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	for _, tc := range []struct {
		name  string
		state func(*CameraState)
	}{
		{"no state", nil},
		{"at another preset", func(s *CameraState) { s.Online, s.Approved, s.Preset = true, true, "2" }},
		{"not locked (blank)", func(s *CameraState) { s.Online, s.Approved, s.Preset = true, false, "1" }},
		{"video lost", func(s *CameraState) { s.Online, s.Approved, s.Preset, s.VideoLost = true, true, "1", true }},
	} {
		if tc.state != nil {
			a.update("c", func(s *CameraState) { *s = CameraState{ID: "c"}; tc.state(s) })
		}
		_, err := a.streamPreview(context.Background(), nil, "c", "1", nil)
		if !errors.Is(err, console.ErrNotAtView) {
			t.Errorf("%s: preview of preset 1: %v, want ErrNotAtView", tc.name, err)
		}
	}
}
