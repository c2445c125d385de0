package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"velo/agent/event"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// An H.265 camera without Media2 (its Media profile says H264, the only
// value Media knows): velo decodes what the SDP says, through GStreamer's
// H.265 path, says so once in a video_fallback event and shows the path
// in the camera's state. (The masked pixels and the relay's codec of the
// same path: TestEndToEndH265CameraMasked in masking.)
func TestH265CameraThroughTheAgent(t *testing.T) {
	cam := camsim.CameraConfig{ID: "h", Address: "127.0.95.31", Username: "velo", Password: "cam-pw", Serial: "SER-H",
		Scene: "badge", FPS: 10, Width: 320, Height: 180, Encoding: "H265", GOPFrames: 5}
	cam.Masks.Disabled = true
	sim := camsim.StartForTest(t, cam)
	port := testkit.FreePort(t)
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [h]}
cameras:
  - id: h
    purpose: entrance
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SER-H}
    xaddr: %s
    username: velo
    password_file: cam.pw
    masks: [{name: door, polygon: [{x: 0.1, y: 0.1}, {x: 0.4, y: 0.1}, {x: 0.4, y: 0.5}, {x: 0.1, y: 0.5}]}]
`, port, sim.Camera("h").XAddr())
	a, _ := runSite(t, map[string]string{"ops.pw": "ops-pw\n", "cam.pw": "cam-pw\n", "site.yaml": text}, 5*time.Minute)
	var st CameraState
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, _ = a.State("h")
		if st.Status == "streaming" && st.Video != nil && a.relayForTest().Publishing("h") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("never streaming with a known video path: %+v video %+v", st, st.Video)
		}
	}
	if v := *st.Video; v.Codec != "H265" || v.Decoder != "avdec_h265" || v.Backend != "gstreamer" || v.Fallback != "" {
		t.Errorf("video path %+v: want H265 via avdec_h265 on gstreamer", v)
	}
	var fb []event.Event
	for _, ev := range a.Events() {
		if ev.Kind == event.VideoFallback && ev.Camera == "h" {
			fb = append(fb, ev)
		}
	}
	if len(fb) != 1 || !strings.Contains(fb[0].Detail, "the profile says H264, the stream's SDP H265") || !strings.Contains(fb[0].Detail, "avdec_h265") {
		t.Errorf("video_fallback events %+v: want one naming the path and the profile/SDP disagreement", fb)
	}
}
