package anonymise

import (
	"strings"
	"testing"
	"time"

	"velo/masking/anonymise/spec"
)

// A mark must stand for one detected person: a box around the subject and
// a companion (or the whole frame) matches no detection and is refused,
// never taken as the subject with everyone inside it exempt; and with a
// point on the subject, a whole person inside the subject's box (a child
// beside them) is still masked.
func TestG35_MarkStandsForOnePerson(t *testing.T) {
	var subjSig, otherSig signature
	subjSig[3], subjSig[16], subjSig[24] = 1, 1, 1
	otherSig[12], otherSig[20], otherSig[30] = 1, 1, 1
	subj := Box{0.10, 0.20, 0.35, 0.90}
	other := Box{0.60, 0.20, 0.75, 0.80}
	child := Box{0.20, 0.60, 0.30, 0.90} // inside the subject's box, at the bottom
	ob := &observation{w: 640, h: 480, fps: 25, mark: 0, markSig: subjSig, markSeen: true}
	for i := range 5 {
		ob.frames = append(ob.frames, seen{at: time.Unix(int64(i), 0), dets: []det{{b: subj, k: HOG, h: subjSig}, {b: other, k: HOG, h: otherSig}, {b: child, k: HOG, h: otherSig}}})
	}
	cfg := Config{Camera: "c", Hold: 5, Margin: 0.5}
	for _, mb := range [][4]float64{{0, 0, 1, 1}, {0.05, 0.15, 0.75, 0.7}} {
		b := mb
		if _, err := makePlan(cfg, spec.Mark{Frame: 0, Box: &b}, ob); err == nil || !(strings.Contains(err.Error(), "matches no person") || strings.Contains(err.Error(), "more than one person")) {
			t.Errorf("mark %v around several people: %v", mb, err)
		}
	}
	pl, err := makePlan(cfg, spec.Mark{Frame: 0, Point: &[2]float64{0.2, 0.3}}, ob) // on the subject's head
	if err != nil {
		t.Fatal(err)
	}
	for i, pf := range pl.frames {
		for _, who := range []Box{other, child} {
			covered := false
			for _, mk := range pf.masks {
				if mk.X0 <= who.X0 && mk.X1 >= who.X1 && mk.Y0 <= who.Y0 && mk.Y1 >= who.Y1 {
					covered = true
				}
			}
			if !covered {
				t.Errorf("frame %d (%s): the person at %v is not masked: %v", i, pf.state, who, pf.masks)
			}
		}
	}
}
