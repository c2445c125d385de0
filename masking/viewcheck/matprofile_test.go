//go:build matprofile

package viewcheck_test

import (
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"velo/masking"
	"velo/masking/viewcheck"
)

// Run with -tags matprofile (make test does): every gocv.Mat that making
// references, checking frames (fast path, deep checks, alarms, failures)
// and closing a Verifier creates is closed again.
func TestNoLeakedMats(t *testing.T) {
	sc := newScene(t, 8)
	before := gocv.MatProfile.Count()
	day, err := viewcheck.NewReference(sc.frame(t, view{}), siteMasks(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	nf := sc.frame(t, view{})
	night(nf)
	nightRef, err := viewcheck.NewReference(nf, siteMasks(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := viewcheck.New([]*viewcheck.Reference{day, nightRef}, viewcheck.Options{DeepEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	frames := []*masking.Frame{sc.frame(t, view{}), sc.frame(t, view{DX: 40}), sc.frame(t, view{Rot: 3}), nf, masking.NewFrame(640, 360)}
	for i := range 20 {
		v.Check(frames[i%len(frames)], "")
		v.Check(frames[i%len(frames)], "elsewhere")
	}
	v.Close()
	if n := gocv.MatProfile.Count(); n != before {
		var b strings.Builder
		_ = gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("%d Mats leaked:\n%s", n-before, b.String())
	}
}
