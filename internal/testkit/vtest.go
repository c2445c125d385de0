package testkit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"velo/masking/maskspec"
)

// Data subjects' copies (G-3.5) on real footage: Debian's opencv-doc
// vtest.avi (deploy/deps.sh installs it; never downloaded) and the people
// labelled by hand in it (masking/anonymise/testdata/vtest_people.json,
// with how they were labelled).

// VtestClip is OpenCV's pedestrian clip, 768×576.
const VtestClip = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// The part of vtest.avi the subject tests record: frames 200..289 at
// 384×288, 10 fps (frame 200 is the copy's frame 0).
const (
	SubjectClipFrom   = 200
	SubjectClipFrames = 90
	SubjectW          = 384
	SubjectH          = 288
)

// SubjectBoxes are the data subject's labelled boxes (pixels of the
// 768×576 clip, every 10th frame): a man who walks alone from the right
// of the path to the left in frames 200..280, picked by eye among the
// labels. Everyone else labelled on those frames is a third party.
var SubjectBoxes = map[int][4]int{
	200: {486, 143, 521, 226}, 210: {428, 167, 452, 232}, 220: {364, 160, 401, 243},
	230: {289, 160, 323, 242}, 240: {233, 153, 268, 237}, 250: {191, 148, 226, 230},
	260: {159, 141, 190, 219}, 270: {125, 139, 158, 213}, 280: {113, 142, 144, 217},
}

// MaskColour is the fill of the copies' masks in these tests: a colour
// vtest.avi does not have, so a masked pixel is recognised after H.264.
var MaskColour = maskspec.RGBToYUV(255, 0, 255)

// SubjectClip writes vtest.avi frames 200..289 at 384×288, 10 fps, as an
// H.264 Matroska file at path (a recorded segment's format).
func SubjectClip(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(VtestClip); err != nil {
		t.Fatalf("%s missing: Debian package opencv-doc (deploy/deps.sh): %v", VtestClip, err)
	}
	vf := fmt.Sprintf("select=between(n\\,%d\\,%d),setpts=N/10/TB,scale=%d:%d", SubjectClipFrom, SubjectClipFrom+SubjectClipFrames-1, SubjectW, SubjectH)
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-i", VtestClip, "-vf", vf, "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "18", "-an", "-y", path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
}

// SubjectMark marks the subject with a box on the copy's first frame.
func SubjectMark() string {
	b := SubjectBoxes[SubjectClipFrom]
	return fmt.Sprintf("frame=0,box=%.4f,%.4f,%.4f,%.4f", float64(b[0])/768, float64(b[1])/576, float64(b[2]-b[0])/768, float64(b[3]-b[1])/576)
}

// SubjectScore is a copy scored on the labels: third parties covered
// (≥ 90 % of their box masked) and the subject's visible share on each
// labelled frame.
type SubjectScore struct {
	People, Covered int
	Missed          []string
	Visible         []float64
}

// Coverage is the share of third parties covered.
func (s SubjectScore) Coverage() float64 { return float64(s.Covered) / float64(max(s.People, 1)) }

// ScoreSubjectCopy decodes a copy (MP4 bytes) with ffmpeg and scores it.
func ScoreSubjectCopy(t testing.TB, mp4 []byte) SubjectScore {
	t.Helper()
	p := filepath.Join(t.TempDir(), "copy.mp4")
	if err := os.WriteFile(p, mp4, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command("ffmpeg", "-loglevel", "error", "-i", p, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode of the copy: %v", err)
	}
	size := SubjectW * SubjectH * 3 / 2
	if len(raw) != SubjectClipFrames*size {
		t.Fatalf("the copy has %d bytes, want %d frames of %dx%d", len(raw), SubjectClipFrames, SubjectW, SubjectH)
	}
	labels := vtestLabels(t)
	var s SubjectScore
	for n := SubjectClipFrom; n < SubjectClipFrom+SubjectClipFrames; n += 10 {
		f := raw[(n-SubjectClipFrom)*size : (n-SubjectClipFrom+1)*size]
		sb, isSubject := SubjectBoxes[n]
		for _, b := range labels[n] {
			share := maskedShare(f, b)
			switch {
			case isSubject && b == sb:
				s.Visible = append(s.Visible, 1-share)
			case share >= 0.9:
				s.People++
				s.Covered++
			default:
				s.People++
				s.Missed = append(s.Missed, fmt.Sprintf("frame %d box %v %.0f%%", n, b, 100*share))
			}
		}
	}
	return s
}

// vtestLabels reads the labels, by frame.
func vtestLabels(t testing.TB) map[int][][4]int {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(self), "..", "..", "masking", "anonymise", "testdata", "vtest_people.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Width, Height int
		Frames        map[string][][4]int
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Width != 768 || raw.Height != 576 {
		t.Fatalf("%s: %v (size %dx%d)", path, err, raw.Width, raw.Height)
	}
	out := map[int][][4]int{}
	for k, v := range raw.Frames {
		n, err := strconv.Atoi(k)
		if err != nil {
			t.Fatalf("%s: frame %q", path, k)
		}
		out[n] = v
	}
	return out
}

// maskedShare is the share of label box b (768×576 pixels) that has the
// mask's colour in the I420 frame f (384×288), with the tolerance an
// H.264 round trip needs.
func maskedShare(f []byte, b [4]int) float64 {
	const w, h = SubjectW, SubjectH
	yp, up, vp := f[:w*h], f[w*h:w*h+w*h/4], f[w*h+w*h/4:]
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	in, all := 0, 0
	for y := b[1] / 2; y < min(h, b[3]/2); y++ {
		for x := b[0] / 2; x < min(w, b[2]/2); x++ {
			all++
			c := (y/2)*(w/2) + x/2
			if d(yp[y*w+x], MaskColour.Y) < 40 && d(up[c], MaskColour.U) < 32 && d(vp[c], MaskColour.V) < 32 {
				in++
			}
		}
	}
	return float64(in) / float64(max(all, 1))
}
