package anonymise_test

import (
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// Back at the same preset after the masker withheld frames (a
// commissioning hold, a drift, a failed view check: a new masker
// generation), or after a stall, the tracks from before are stale: the
// zone is masked whole until a detection made from then on is back, as
// after a move to another preset.
func TestG45_SameViewAfterAGapMasksTheZone(t *testing.T) {
	const w, h = 320, 240
	left := []maskspec.Point{{X: 0, Y: 0}, {X: 0.5, Y: 0}, {X: 0.5, Y: 1}, {X: 0, Y: 1}}
	for _, gap := range []struct {
		name string
		gen  uint64
		wait time.Duration
	}{{"new masker generation", 3, 0}, {"a stall", 1, 5 * time.Second}} {
		st, err := anonymise.New(anonymise.Config{Camera: "ptz", Detectors: []anonymise.Detector{anonymise.Motion},
			Zones: map[string][]maskspec.Point{"1": left}, Style: maskspec.StyleFill, Color: magenta, Every: 5, Deadline: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		scene := masking.NewFrame(w, h)
		y, u, c := scene.Planes()
		for j := range y {
			y[j] = byte(60 + (j*7)%120)
		}
		for j := range u {
			u[j], c[j] = 128, 128
		}
		f := masking.NewFrame(w, h)
		at := time.Now()
		for range 32 {
			copy(f.Data, scene.Data)
			at = at.Add(100 * time.Millisecond)
			f.View, f.Masked, f.Generation, f.Captured = "1", true, 1, at
			if err := st.Apply(f); err != nil {
				t.Fatal(err)
			}
		}
		at = at.Add(gap.wait)
		for k := range 3 { // someone now stands in the zone
			copy(f.Data, scene.Data)
			fy, _, _ := f.Planes()
			for yy := 80; yy < 200; yy++ {
				for xx := 60; xx < 100; xx++ {
					fy[yy*w+xx] = 250
				}
			}
			at = at.Add(100 * time.Millisecond)
			f.View, f.Masked, f.Generation, f.Captured = "1", true, gap.gen, at
			if err := st.Apply(f); err != nil {
				t.Fatal(err)
			}
			if !isMasked(f, 80, 140) {
				t.Errorf("%s: frame %d after the gap shows the person in the zone", gap.name, k)
			}
		}
		st.Close()
	}
}
