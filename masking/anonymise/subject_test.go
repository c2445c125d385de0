package anonymise_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// The data subject of the copies' tests: in vtest.avi frames 200..280 a
// man walks alone from the right of the path to the left; these are his
// labelled boxes (testdata/vtest_people.json, every 10th frame), picked
// by eye from the labels. Everyone else labelled on those frames is a
// third party.
var subjectBoxes = map[int][4]int{
	200: {486, 143, 521, 226}, 210: {428, 167, 452, 232}, 220: {364, 160, 401, 243},
	230: {289, 160, 323, 242}, 240: {233, 153, 268, 237}, 250: {191, 148, 226, 230},
	260: {159, 141, 190, 219}, 270: {125, 139, 158, 213}, 280: {113, 142, 144, 217},
}

// SubjectClipFrom, SubjectClipFrames: the part of vtest.avi the subject
// tests record (frame 200 of the clip is frame 0 of the copy).
const (
	SubjectClipFrom   = 200
	SubjectClipFrames = 90
	subjW, subjH      = 384, 288
)

// subjectClip cuts vtest.avi frames 200..289 at 384×288 into an H.264
// Matroska file, as the recorder writes them (10 fps).
func subjectClip(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(vtestClip); err != nil {
		t.Fatalf("%s missing: Debian package opencv-doc (deploy/deps.sh): %v", vtestClip, err)
	}
	out := filepath.Join(t.TempDir(), "cam_20260101T000000Z.mkv")
	vf := fmt.Sprintf("select=between(n\\,%d\\,%d),setpts=N/10/TB,scale=%d:%d", SubjectClipFrom, SubjectClipFrom+SubjectClipFrames-1, subjW, subjH)
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-i", vtestClip, "-vf", vf, "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "18", "-an", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// subjectMark is the mark on the subject, on the copy's first frame.
func subjectMark() string {
	b := subjectBoxes[SubjectClipFrom]
	return fmt.Sprintf("frame=0,box=%.4f,%.4f,%.4f,%.4f", float64(b[0])/768, float64(b[1])/576, float64(b[2]-b[0])/768, float64(b[3]-b[1])/576)
}

// scoreSubjectCopy decodes a copy (MP4) and scores it on the labels:
// third parties covered (≥ 90 % of their box masked) and the subject's
// visible share on each labelled frame.
func scoreSubjectCopy(t testing.TB, mp4 []byte) (others tally, visible []float64) {
	t.Helper()
	l := loadLabels(t, "testdata/vtest_people.json")
	frames := decodeMP4(t, mp4, SubjectClipFrames, subjW, subjH)
	for n := SubjectClipFrom; n < SubjectClipFrom+SubjectClipFrames; n += 10 {
		f := frames[n-SubjectClipFrom]
		sb, ok := subjectBoxes[n]
		var rest [][4]int
		for _, b := range l.Frames[n] {
			if b != sb {
				rest = append(rest, b)
			}
		}
		others.add(n, f, rest, l.W, l.H)
		if ok {
			visible = append(visible, 1-maskedShare(f, sb, l.W, l.H))
		}
	}
	return others, visible
}

// maskedShare is the share of box b (label pixels) masked in f.
func maskedShare(f *masking.Frame, b [4]int, lw, lh int) float64 {
	sx, sy := float64(f.W)/float64(lw), float64(f.H)/float64(lh)
	in, all := 0, 0
	for y := int(float64(b[1]) * sy); y < min(f.H, int(float64(b[3])*sy)); y++ {
		for x := int(float64(b[0]) * sx); x < min(f.W, int(float64(b[2])*sx)); x++ {
			all++
			if isMasked(f, x, y) {
				in++
			}
		}
	}
	return float64(in) / float64(max(all, 1))
}

// decodeMP4 decodes an MP4 with ffmpeg into n I420 frames.
func decodeMP4(t testing.TB, mp4 []byte, n, w, h int) []*masking.Frame {
	t.Helper()
	p := filepath.Join(t.TempDir(), "copy.mp4")
	if err := os.WriteFile(p, mp4, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command("ffmpeg", "-loglevel", "error", "-i", p, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode of the copy: %v", err)
	}
	size := w * h * 3 / 2
	if len(raw) != n*size {
		t.Fatalf("the copy has %d frames of %dx%d (%d bytes), want %d", len(raw)/size, w, h, len(raw), n)
	}
	fs := make([]*masking.Frame, n)
	for i := range fs {
		fs[i] = &masking.Frame{W: w, H: h, Data: raw[i*size : (i+1)*size]}
	}
	return fs
}

// G-3.5: a data subject's copy of real footage: the marked man stays
// visible where he is tracked, every other labelled person is masked.
func TestG35_SubjectCopyMasksThirdParties(t *testing.T) {
	clip := subjectClip(t)
	mark, err := spec.ParseMark(subjectMark())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	job := spec.SubjectJob{Camera: "cam", From: start, To: start.Add(SubjectClipFrames * 100 * time.Millisecond), Mark: mark, TempDir: t.TempDir(),
		Segments: []spec.SubjectSegment{{Name: "cam_20260101T000000Z.mkv.sealed", Start: start, Feed: func(w io.Writer) error {
			f, err := os.Open(clip)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}}}}
	sub := anonymise.Subjects{Base: anonymise.Config{Detectors: SubjectTestDetectors, Style: maskspec.StyleFill, Color: magenta, DetectWidth: subjW}}
	var mp4 bytes.Buffer
	t0 := time.Now()
	rep, err := sub.CopySubject(context.Background(), job, &mp4)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	others, vis := scoreSubjectCopy(t, mp4.Bytes())
	t.Logf("%d frames in %v (%.1f fps); tracked %d, uncertain %d, whole %d; others covered %.3f (%d of %d); subject's visible share on the labelled frames %.2f",
		rep.Frames, took, float64(rep.Frames)/took.Seconds(), rep.Tracked, len(rep.Uncertain), len(rep.WholeFrame), others.coverage(), others.covered, others.people, vis)
	checkSubjectCopy(t, rep, others, vis)
}

// checkSubjectCopy: every other labelled person covered ≥ 90 % on ≥ 0.95
// of their boxes; the subject ≥ 70 % visible on 8 of the 9 labelled
// frames and tracked on most frames; the report lists what was masked.
func checkSubjectCopy(t testing.TB, rep spec.SubjectReport, others tally, vis []float64) {
	t.Helper()
	if others.people < 40 || others.coverage() < 0.95 {
		t.Errorf("third parties covered %.3f (%d people) < 0.95; missed %v", others.coverage(), others.people, others.missed)
	}
	nvis := 0
	for _, v := range vis {
		if v >= 0.7 {
			nvis++
		}
	}
	if nvis < 8 || rep.Tracked < rep.Frames*3/4 {
		t.Errorf("subject ≥70%% visible on %d of %d labelled frames (%v), tracked on %d of %d frames", nvis, len(vis), vis, rep.Tracked, rep.Frames)
	}
	masked := 0
	for _, pf := range rep.PerFrame {
		masked += len(pf.Masked)
	}
	if rep.Frames != SubjectClipFrames || len(rep.PerFrame) != rep.Frames || masked < rep.Frames || rep.Style == "" || len(rep.Detectors) == 0 ||
		rep.Tracked+len(rep.Uncertain)+len(rep.WholeFrame) != rep.Frames {
		t.Errorf("report: %d frames, %d listed, %d boxes masked, style %q, detectors %v", rep.Frames, len(rep.PerFrame), masked, rep.Style, rep.Detectors)
	}
}

// SubjectTestDetectors: people by motion, plates (HOG needs people
// taller than the 384×288 clip has; it runs in make bench).
var SubjectTestDetectors = []anonymise.Detector{anonymise.Motion, anonymise.Plate}
