package anonymise_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// auFile is a masking.StreamPublisher that keeps Velo's encoded H.264
// access units as an Annex B byte stream.
type auFile struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (a *auFile) PublishAU(_ string, au [][]byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, nal := range au {
		a.buf.Write([]byte{0, 0, 0, 1})
		a.buf.Write(nal)
	}
	return nil
}

func (a *auFile) Unpublish(string) {}

// smallClip cuts the first n frames of clip, scaled to w×h, into an H.264
// file (the footage at CI size).
func smallClip(t *testing.T, clip string, n, w, h int, filter string) string {
	t.Helper()
	if _, err := os.Stat(clip); err != nil {
		t.Fatalf("%s missing: Debian package opencv-doc (deploy/deps.sh): %v", clip, err)
	}
	out := filepath.Join(t.TempDir(), "clip.mkv")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-i", clip, "-frames:v", fmt.Sprint(n), "-vf", fmt.Sprintf("scale=%d:%d%s", w, h, filter),
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "18", "-an", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// runVelo puts clip through Velo's frame path (capture → masker → dynamic
// stage → x264 encoder) and returns the first n frames of its encoded
// output, decoded by ffmpeg, with the stage's counters.
func runVelo(t *testing.T, clip string, n, w, h int, cfg anonymise.Config) ([]*masking.Frame, anonymise.Stats) {
	t.Helper()
	st, err := anonymise.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := masking.NewMasker(cfg.Camera, maskspec.FailBlank)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: ""}}); err != nil {
		t.Fatal(err)
	}
	m.SetView("", true)
	out := &auFile{}
	pl, err := masking.NewPipeline(masking.PipelineConfig{Camera: cfg.Camera, Masker: m, Open: masking.FileOpener(clip), Dynamic: st,
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: cfg.Camera, FPS: 10, BitrateKbps: 4000, Relay: out})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	for pl.Stats().Encoded < uint64(n) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	if s := pl.Stats(); s.Encoded < uint64(n) {
		t.Fatalf("only %d of %d frames encoded in 3 min", s.Encoded, n)
	}
	return decodeH264(t, out.buf.Bytes(), n, w, h), st.Stats()
}

// decodeH264 decodes an Annex B stream with ffmpeg into n I420 frames.
func decodeH264(t *testing.T, stream []byte, n, w, h int) []*masking.Frame {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-f", "h264", "-i", "-", "-frames:v", fmt.Sprint(n), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	cmd.Stdin = bytes.NewReader(stream)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decode: %v", err)
	}
	size := w * h * 3 / 2
	if len(raw) < n*size {
		t.Fatalf("decoded %d frames, want %d", len(raw)/size, n)
	}
	fs := make([]*masking.Frame, n)
	for i := range fs {
		fs[i] = &masking.Frame{W: w, H: h, Data: raw[i*size : (i+1)*size]}
	}
	return fs
}

// TestG45_DynamicMaskCoversPeopleInVeloOutput: vtest.avi (real footage,
// people labelled by hand) at 384×288 through Velo's frame path; the
// labelled people must be masked in the decoded output. The full-size
// figures (goal ≥ 0.98 with the zone fallback) are in make bench.
func TestG45_DynamicMaskCoversPeopleInVeloOutput(t *testing.T) {
	const n, w, h = 200, 384, 288
	l := loadLabels(t, "testdata/vtest_people.json")
	clip := smallClip(t, vtestClip, n, w, h, "")
	cfg := anonymise.Config{Camera: "vtest", Detectors: []anonymise.Detector{anonymise.Motion}, Zone: wholeFrame,
		Style: maskspec.StyleFill, Color: magenta, DetectWidth: w, Deadline: 2 * time.Second}
	frames, s := runVelo(t, clip, n, w, h, cfg)
	var tl tally
	for i, f := range frames {
		if b, ok := l.Frames[i]; ok {
			tl.add(i, f, b, l.W, l.H)
		}
	}
	t.Logf("coverage %.3f (%d of %d labelled people ≥ 90%% masked), frame masked %.3f, fallbacks %d of %d frames, detector p50 %v p99 %v",
		tl.coverage(), tl.covered, tl.people, tl.cost(), s.Fallbacks, s.Frames, s.DetectP50, s.DetectP99)
	if tl.people < 100 {
		t.Fatalf("only %d labelled people scored", tl.people)
	}
	// Measured 0.985 on these 200 frames (0.89 when the background model
	// learnt at OpenCV's start-up rate and two men standing still by the
	// sign faded into it); the floor leaves room for load, not for a
	// broken detector or tracker (near 0 without detections).
	if c := tl.coverage(); c < 0.95 {
		t.Errorf("coverage %.3f < 0.95; missed: %v", c, tl.missed)
	}
	if c := tl.cost(); c <= 0 || c > 0.4 {
		t.Errorf("share of the frame masked %.3f: want some, and not the whole picture", c)
	}
	if s.Detections == 0 || s.Tracked == 0 {
		t.Errorf("counters: %+v", s)
	}
}

// TestG45_TooDarkMasksTheWholeZone: a scene darker than min_luma (default) is not
// trusted to the detector: every frame has its whole zone masked, so every
// labelled person is hidden (fail closed).
func TestG45_TooDarkMasksTheWholeZone(t *testing.T) {
	const n, w, h = 60, 384, 288
	l := loadLabels(t, "testdata/vtest_people.json")
	// The clip at dusk: brightness down to a mean luma near 20.
	clip := smallClip(t, vtestClip, n, w, h, ",eq=brightness=-0.45")
	zone := []maskspec.Point{{X: 0, Y: 0.15}, {X: 1, Y: 0.15}, {X: 1, Y: 0.8}, {X: 0, Y: 0.8}}
	cfg := anonymise.Config{Camera: "vtest", Detectors: []anonymise.Detector{anonymise.Motion}, Zone: zone,
		Style: maskspec.StyleFill, Color: magenta}
	frames, s := runVelo(t, clip, n, w, h, cfg)
	var tl tally
	for i, f := range frames {
		if b, ok := l.Frames[i]; ok {
			tl.add(i, f, b, l.W, l.H)
		}
	}
	t.Logf("coverage %.3f, frame masked %.3f, %+v", tl.coverage(), tl.cost(), s)
	if tl.coverage() != 1 || s.Reasons[anonymise.WhyDark] == 0 {
		t.Errorf("dark scene: coverage %.3f (want 1), reasons %v; missed %v", tl.coverage(), s.Reasons, tl.missed)
	}
	if c := tl.cost(); c < 0.6 || c > 0.7 {
		t.Errorf("share masked %.3f, want the zone's 0.65", c)
	}
}
