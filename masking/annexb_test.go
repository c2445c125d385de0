package masking

import (
	"bytes"
	"os/exec"
	"testing"
)

// A real x264 Annex-B stream (ffmpeg) splits into one access unit per
// frame; keyframes carry SPS, PPS and an IDR slice.
func TestAUReaderOnX264Stream(t *testing.T) {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
		"-frames:v", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-bf", "0", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	ar := newAUReader(bytes.NewReader(out))
	var aus [][][]byte
	for {
		au, err := ar.NextAU()
		if err != nil {
			break
		}
		aus = append(aus, au)
	}
	if len(aus) != 12 {
		t.Fatalf("%d access units, want 12", len(aus))
	}
	for i, au := range aus {
		types := map[byte]bool{}
		for _, n := range au {
			types[n[0]&0x1f] = true
		}
		key := i%5 == 0
		if key != (types[7] && types[8] && types[5]) {
			t.Errorf("AU %d: NAL types %v (keyframe expected: %t)", i, types, key)
		}
		if !types[1] && !types[5] {
			t.Errorf("AU %d has no slice", i)
		}
	}
}
