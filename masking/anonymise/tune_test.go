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
// encoder), for tuning: VELO_ANON_MEASURE=frames (e.g. 600) runs it.
func TestMeasureOnFrames(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VELO_ANON_MEASURE"))
	if n == 0 {
		t.Skip("VELO_ANON_MEASURE=frames runs it")
	}
	l := loadLabels(t, "testdata/vtest_people.json")
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
	st, err := anonymise.New(anonymise.Config{Camera: "vtest", Detectors: dets,
		Zone: wholeFrame, Style: maskspec.StyleFill, Color: magenta, Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src, err := masking.FileOpener(vtestClip)(context.Background())
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
