package masking

import (
	"strings"
	"testing"
)

func TestSelfTestPasses(t *testing.T) {
	rep := SelfTest(640, 360, nil)
	for _, c := range rep.Checks {
		t.Logf("%-5v %s: %s", c.OK, c.Name, c.Detail)
	}
	if !rep.OK || rep.Failed != 0 {
		t.Fatalf("self-test failed: %d checks failed", rep.Failed)
	}
	// Every style and every fail-closed case was checked.
	for _, want := range []string{"fill \"badge reader\"", "pixelate \"time clock\"", "blur \"street\"",
		"opencv-png-roundtrip", "opencv-jpeg", "encoded fill", "fail-closed: view not approved",
		"fail-closed: corrupt frame", "fail-closed: stale generation refused", "fail-closed: blank mode", "outside-unchanged"} {
		found := false
		for _, c := range rep.Checks {
			found = found || strings.Contains(c.Name, want)
		}
		if !found {
			t.Errorf("no check named %q", want)
		}
	}
}

// TestSelfTestDetects proves each content check can fail: a frame altered
// after masking (one original sample put back, a pixel outside changed, a
// pixelate block made uneven, the blur undone) is reported.
func TestSelfTestDetects(t *testing.T) {
	sets := SelfTestSets()
	orig := noiseFrame(640, 360, 0x9E3779B9)
	ras, err := Rasterize(&sets[0], 640, 360)
	if err != nil {
		t.Fatal(err)
	}
	first := func(i int) (x, y int) {
		for y := 0; y < 360; y++ {
			for x := 0; x < 640; x++ {
				if ras.Inside(i, x, y) {
					return x, y
				}
			}
		}
		t.Fatalf("mask %d covers nothing", i)
		return
	}
	restore := func(i int, all bool) func(f *Frame) {
		return func(f *Frame) {
			for y := 0; y < 360; y++ {
				for x := 0; x < 640; x++ {
					if ras.Inside(i, x, y) {
						f.Data[y*640+x] = orig.Data[y*640+x]
						if !all {
							return
						}
					}
				}
			}
		}
	}
	cases := []struct {
		name, check string
		corrupt     func(f *Frame)
	}{
		{"one fill sample restored", `fill "badge reader"`, restore(0, false)},
		{"pixel outside changed", "outside-unchanged", func(f *Frame) { f.Data[0] ^= 0xFF }},
		{"pixelate sample off", `pixelate "time clock"`, func(f *Frame) { x, y := first(1); f.Data[y*640+x] ^= 1 }},
		{"blur undone", `blur "street"`, restore(2, true)},
		{"fill colour wrong in chroma", "encoded fill", func(f *Frame) {
			_, u, _ := f.Planes()
			for y := 0; y < 180; y++ {
				for x := 0; x < 320; x++ {
					if ras.InsideChroma(0, x, y) {
						u[y*320+x] = 240
					}
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := selfTester{corrupt: c.corrupt}.run(640, 360, nil)
			if rep.OK {
				t.Fatal("self-test passed a corrupted frame")
			}
			hit := false
			for _, ch := range rep.Checks {
				if !ch.OK {
					t.Logf("failed as expected: %s: %s", ch.Name, ch.Detail)
					hit = hit || strings.Contains(ch.Name, c.check)
				}
			}
			if !hit {
				t.Errorf("check %q did not fail", c.check)
			}
		})
	}
}

func TestSelfTestBadSize(t *testing.T) {
	if rep := SelfTest(641, 360, nil); rep.OK {
		t.Fatal("odd width accepted")
	}
}
