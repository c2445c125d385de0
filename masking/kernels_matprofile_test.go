//go:build matprofile

package masking

import (
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"velo/masking/maskspec"
)

// Run with -tags matprofile: the blur kernel closes every Mat it makes
// (plane and scratch views, their regions), also when it fails.
func TestNoLeakedMatsInKernels(t *testing.T) {
	before := gocv.MatProfile.Count()
	for _, st := range []maskspec.Style{maskspec.StyleBlur, maskspec.StylePixelate, maskspec.StyleFill} {
		r := buildOne(t, maskspec.Mask{Name: "m", Style: st, Polygon: testPolys["concave L"]}, 320, 240)
		for i := 0; i < 5; i++ {
			if err := r.Apply(randomFrame(320, 240, uint64(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := gocv.MatProfile.Count(); n != before {
		var b strings.Builder
		_ = gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("%d Mats leaked:\n%s", n-before, b.String())
	}
}
