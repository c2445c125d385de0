package viewcheck_test

import (
	"syscall"
	"testing"

	"velo/masking"
	"velo/masking/viewcheck"
)

// BenchmarkCheck1080p is the verification cost per 1080p frame, with the
// default rate of deep checks (the goal: well under 0.5 ms, a tenth of
// decoding the frame). Frames vary (noise) so that nothing is cached.
func BenchmarkCheck1080p(b *testing.B) { benchCheck(b, viewcheck.Options{}) }

// BenchmarkDeepCheck1080p is the cost of a frame with the deep check.
func BenchmarkDeepCheck1080p(b *testing.B) { benchCheck(b, viewcheck.Options{DeepEvery: 1}) }

func benchCheck(b *testing.B, opts viewcheck.Options) {
	sc := newScene(b, 1)
	ref, err := viewcheck.NewReference(sc.frame(b, view{}), siteMasks(), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := viewcheck.New([]*viewcheck.Reference{ref}, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	frames := make([]*masking.Frame, 8)
	for i := range frames {
		frames[i] = sc.frame(b, view{})
		noise(3, uint64(i))(frames[i])
	}
	c0, n := cpuNow(), 0
	for i := 0; b.Loop(); i++ {
		if got := v.Check(frames[i%len(frames)], ""); !got.OK {
			b.Fatalf("mismatch on good frame %d: %+v", i, got)
		}
		n++
	}
	// Process CPU (OpenCV's worker threads included), not wall time.
	b.ReportMetric((cpuNow()-c0)/float64(n)*1e3, "cpu-ms/frame")
}

func cpuNow() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
