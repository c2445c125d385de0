package anonymise_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// wholeFrame is a dynamic_zone covering the whole picture.
var wholeFrame = []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}

// TestMeasureOnFrames scores the stage straight on decoded frames (no
// encoder), for tuning: VELO_ANON_MEASURE=frames (e.g. 600) runs it;
// VELO_ANON_CLIP=megamind scores the faces of Megamind.avi (261 frames)
// instead of vtest.avi's people, VELO_ANON_WIDTH sets detect_width.
func TestMeasureOnFrames(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VELO_ANON_MEASURE"))
	if n == 0 {
		t.Skip("VELO_ANON_MEASURE=frames runs it")
	}
	clip, labelFile := vtestClip, "testdata/vtest_people.json"
	if os.Getenv("VELO_ANON_CLIP") == "megamind" { // with VELO_ANON_DETECTORS=face_frontal,face_profile
		clip, labelFile = megamindClip, "testdata/megamind_faces.json"
	}
	width, _ := strconv.Atoi(os.Getenv("VELO_ANON_WIDTH")) // detect_width (0: default)
	l := loadLabels(t, labelFile)
	deadline := 5 * time.Second // VELO_ANON_DEADLINE=40ms: with the zone fallback
	if d, err := time.ParseDuration(os.Getenv("VELO_ANON_DEADLINE")); err == nil {
		deadline = d
	}
	dets := []anonymise.Detector{anonymise.Motion}
	if d := os.Getenv("VELO_ANON_DETECTORS"); d != "" {
		dets = nil
		for _, x := range strings.Split(d, ",") {
			dets = append(dets, anonymise.Detector(x))
		}
	}
	st, err := anonymise.New(anonymise.Config{Camera: "measure", Detectors: dets, DetectWidth: width,
		Zone: wholeFrame, Style: maskspec.StyleFill, Color: magenta, Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := masking.FileOpener(clip)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tl tally
	f := &masking.Frame{}
	for i := 0; i < n; i++ {
		if err := src.Read(f); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(f); err != nil {
			t.Fatal(err)
		}
		if b, ok := l.Frames[i]; ok {
			tl.add(i, f, b, l.W, l.H)
		}
	}
	s := st.Stats()
	t.Logf("coverage %.3f (%d of %d people), frame masked %.3f; %+v", tl.coverage(), tl.covered, tl.people, tl.cost(), s)
	for _, m := range tl.missed {
		t.Log("missed:", m)
	}
}
