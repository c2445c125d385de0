package masking

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// G-3.4: a segment's file name carries its camera ID exactly: gate.x and
// gate_x never share files, and ingresso.1's segments parse back as
// ingresso.1's (so they keep its retention, and the one being written is
// recognised as such).
func TestG34_SegmentNamesKeepTheCameraID(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	seen := map[string]string{}
	for _, id := range []string{"gate.x", "gate_x", "ingresso.1", "cam1"} {
		name := strings.NewReplacer("%Y%m%dT%H%M%SZ", at.Format(SegmentTimeFormat)).Replace(segmentPattern("/rec", id))
		if other, dup := seen[name]; dup {
			t.Errorf("cameras %q and %q both record to %s", other, id, filepath.Base(name))
		}
		seen[name] = id
		cam, start, err := SegmentStart(name)
		if err != nil || cam != id || !start.Equal(at) {
			t.Errorf("%s parses as camera %q at %v (%v), want %q", filepath.Base(name), cam, start, err, id)
		}
	}
	if _, err := NewRecorder(RecorderConfig{Camera: "a%Y", Source: "rtsp://127.0.0.1/x", Dir: t.TempDir()}); err == nil {
		t.Error("a camera ID that is not a valid ID accepted by the recorder")
	}
}
