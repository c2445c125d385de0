package anonymise_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking/anonymise"
	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// SubjectTestDetectors: people by motion, and plates (HOG needs people
// taller than the 384×288 clip has).
var subjectTestDetectors = []anonymise.Detector{anonymise.Motion, anonymise.Plate}

// subjectJob is a copy of the whole clip at path (one segment).
func subjectJob(t *testing.T, clip, mark string) spec.SubjectJob {
	t.Helper()
	m, err := spec.ParseMark(mark)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return spec.SubjectJob{Camera: "cam", From: start, To: start.Add(testkit.SubjectClipFrames * 100 * time.Millisecond), Mark: m, TempDir: t.TempDir(),
		Segments: []spec.SubjectSegment{{Name: "cam_20260101T000000Z.mkv.sealed", Start: start, Feed: func(w io.Writer) error {
			f, err := os.Open(clip)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}}}}
}

func subjectCopier() anonymise.Subjects {
	return anonymise.Subjects{Base: anonymise.Config{Detectors: subjectTestDetectors, Style: maskspec.StyleFill, Color: testkit.MaskColour, DetectWidth: testkit.SubjectW}}
}

// G-3.5: a data subject's copy of real footage: the man marked with a
// point at the start stays visible where he is tracked, every other
// labelled person is masked, and the report lists what was masked on
// every frame. (The CLI's test marks him with a box.)
func TestG35_SubjectCopyMasksThirdParties(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "cam_20260101T000000Z.mkv")
	testkit.SubjectClip(t, clip)
	b := testkit.SubjectBoxes[testkit.SubjectClipFrom]
	point := fmt.Sprintf("time=0s,point=%.4f,%.4f", float64(b[0]+b[2])/2/768, float64(b[1]+b[3])/2/576)
	var mp4 bytes.Buffer
	t0 := time.Now()
	rep, err := subjectCopier().CopySubject(context.Background(), subjectJob(t, clip, point), &mp4)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	sc := testkit.ScoreSubjectCopy(t, mp4.Bytes())
	t.Logf("mark %s resolved to frame %d; %d frames in %v (%.1f fps); tracked %d, uncertain %d, whole %d; others covered %.3f (%d of %d); subject's visible share on the labelled frames %.2f",
		point, rep.MarkFrame, rep.Frames, took, float64(rep.Frames)/took.Seconds(), rep.Tracked, len(rep.Uncertain), len(rep.WholeFrame), sc.Coverage(), sc.Covered, sc.People, sc.Visible)
	CheckSubjectCopy(t, rep, sc)
}

// CheckSubjectCopy: every other labelled person covered ≥ 90 % on ≥ 0.95
// of their boxes; the subject ≥ 70 % visible on 8 of the 9 labelled
// frames and tracked on most frames; the report lists what was masked.
func CheckSubjectCopy(t testing.TB, rep spec.SubjectReport, sc testkit.SubjectScore) {
	t.Helper()
	if sc.People < 40 || sc.Coverage() < 0.95 {
		t.Errorf("third parties covered %.3f (%d people) < 0.95; missed %v", sc.Coverage(), sc.People, sc.Missed)
	}
	nvis := 0
	for _, v := range sc.Visible {
		if v >= 0.7 {
			nvis++
		}
	}
	if len(sc.Visible) != 9 || nvis < 8 || rep.Tracked < rep.Frames*3/4 {
		t.Errorf("subject ≥70%% visible on %d of %d labelled frames (%.2f), tracked on %d of %d frames", nvis, len(sc.Visible), sc.Visible, rep.Tracked, rep.Frames)
	}
	masked := 0
	for _, pf := range rep.PerFrame {
		masked += len(pf.Masked)
	}
	if rep.Frames != testkit.SubjectClipFrames || len(rep.PerFrame) != rep.Frames || masked < rep.Frames || rep.Style == "" || len(rep.Detectors) == 0 ||
		rep.Tracked+len(rep.Uncertain)+len(rep.WholeFrame) != rep.Frames {
		t.Errorf("report: %d frames, %d listed, %d boxes masked, style %q, detectors %v", rep.Frames, len(rep.PerFrame), masked, rep.Style, rep.Detectors)
	}
}

// G-3.5, fail closed: a scene too dark for the detectors is masked whole
// on every frame (the subject too: nothing is trusted); a point on nobody
// makes no copy.
func TestG35_SubjectCopyFailsClosed(t *testing.T) {
	dark := filepath.Join(t.TempDir(), "dark.mkv")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-i", testkit.VtestClip, "-frames:v", "20", "-vf", "scale=384:288,eq=brightness=-0.45",
		"-r", "10", "-c:v", "libx264", "-preset", "ultrafast", "-an", dark)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	// Two recorded segments of one second each: the copy runs on from
	// one to the next.
	job := subjectJob(t, dark, testkit.SubjectMark())
	job.To = job.From.Add(2 * time.Second)
	second := job.Segments[0]
	second.Name, second.Start = "cam_20260101T000001Z.mkv.sealed", job.From.Add(time.Second)
	job.Segments = append(job.Segments, second)
	var mp4 bytes.Buffer
	rep, err := subjectCopier().CopySubject(context.Background(), job, &mp4)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frames != 20 || len(rep.WholeFrame) != 20 || len(rep.PerFrame[5].Masked) != 1 || rep.PerFrame[5].Masked[0] != [4]float64{0, 0, 1, 1} || mp4.Len() == 0 {
		t.Fatalf("dark scene: %d frames, %d masked whole (%v), %d bytes", rep.Frames, len(rep.WholeFrame), rep.PerFrame[5], mp4.Len())
	}
	if f := rep.PerFrame[10]; f.Segment != second.Name || !f.Time.Equal(second.Start) || rep.PerFrame[9].Segment != job.Segments[0].Name {
		t.Errorf("frame 10 of two segments: %s at %s", f.Segment, f.Time)
	}
	mp4.Reset()
	_, err = subjectCopier().CopySubject(context.Background(), subjectJob(t, dark, "frame=3,point=0.5,0.02"), &mp4)
	if err == nil || !strings.Contains(err.Error(), "no person detected at that point") || mp4.Len() != 0 {
		t.Errorf("a point on nobody: %v, %d bytes", err, mp4.Len())
	}
}

// TestMeasureSubjectCopyDefaults (VELO_SUBJECT_MEASURE=1): the same copy
// with the default detectors of a camera without dynamic masking (HOG,
// motion, plates at 480 px), for docs/masking.md's figures; no floor.
func TestMeasureSubjectCopyDefaults(t *testing.T) {
	if os.Getenv("VELO_SUBJECT_MEASURE") == "" {
		t.Skip("set VELO_SUBJECT_MEASURE=1 to measure")
	}
	clip := filepath.Join(t.TempDir(), "cam_20260101T000000Z.mkv")
	testkit.SubjectClip(t, clip)
	var mp4 bytes.Buffer
	t0 := time.Now()
	sub := anonymise.Subjects{Base: anonymise.Config{Style: maskspec.StyleFill, Color: testkit.MaskColour}}
	if v := os.Getenv("VELO_SUBJECT_DETECTORS"); v != "" {
		for _, d := range strings.Split(v, ",") {
			sub.Base.Detectors = append(sub.Base.Detectors, anonymise.Detector(d))
		}
	}
	if v, _ := strconv.Atoi(os.Getenv("VELO_SUBJECT_WIDTH")); v > 0 {
		sub.Base.DetectWidth = v
	}
	rep, err := sub.CopySubject(context.Background(), subjectJob(t, clip, testkit.SubjectMark()), &mp4)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	sc := testkit.ScoreSubjectCopy(t, mp4.Bytes())
	t.Logf("detectors %v at %d px: %d frames in %v (%.1f fps); tracked %d, uncertain %d, whole %d; others covered %.3f (%d of %d); subject's visible share %.2f",
		rep.Detectors, rep.DetectWidth, rep.Frames, took, float64(rep.Frames)/took.Seconds(), rep.Tracked, len(rep.Uncertain), len(rep.WholeFrame), sc.Coverage(), sc.Covered, sc.People, sc.Visible)
}
