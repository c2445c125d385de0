package viewcheck

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The per-frame fast paths of the score agree with the general one.
func TestScorePathsAgree(t *testing.T) {
	const w, h = 160, 90
	rng := rand.New(rand.NewPCG(1, 2))
	luma := func() []byte {
		b := make([]byte, w*h)
		for i := range b {
			b[i] = byte(40 + rng.IntN(150))
		}
		return b
	}
	ref, frame := newHalfStructure(w, h), newHalfStructure(w, h)
	ref.compute(luma())
	base := luma()
	noisy := make([]byte, len(base))
	for i, v := range base {
		noisy[i] = byte(int(v) + rng.IntN(21) - 10)
	}
	frame.compute(noisy)
	ref.compute(base)
	excl := make([]byte, w*h)
	for y := 20; y < 50; y++ {
		for x := 30; x < 70; x++ {
			excl[y*w+x] = 255
		}
	}
	valid := validity(excl, w, h)
	general := score(ref, frame, valid, similarity{})
	if general < 0.5 || general > 0.99 {
		t.Fatalf("score %.3f of a noisy copy, want between 0.5 and 0.99", general)
	}
	for name, got := range map[string]float64{
		"shiftScore":     shiftScore(ref, frame, valid, 0, 0),
		"unshiftedScore": unshiftedScore(ref, frame, validRuns(valid, w, h)),
	} {
		if math.Abs(got-general) > 1e-4 {
			t.Errorf("%s = %.6f, score = %.6f", name, got, general)
		}
	}
	if got, want := shiftScore(ref, frame, valid, 2, -1), score(ref, frame, valid, similarity{tx: 2, ty: -1}); math.Abs(got-want) > 1e-4 {
		t.Errorf("shifted: shiftScore %.6f, score %.6f", got, want)
	}
}
