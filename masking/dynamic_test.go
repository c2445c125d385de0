package masking

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"velo/masking/maskspec"
)

// failEvery fails every other frame and marks the frames it passes.
type failEvery struct{ n atomic.Int64 }

func (d *failEvery) Apply(f *Frame) error {
	if d.n.Add(1)%2 == 0 {
		return errors.New("detector failed")
	}
	y, _, _ := f.Planes()
	y[1] = 77
	return nil
}

// TestDynamicStageFailsClosed: a frame the Dynamic stage fails is never
// encoded; the frames it passes are encoded after it ran (G-4.5: never a
// frame out without the dynamic masks).
func TestDynamicStageFailsClosed(t *testing.T) {
	m, err := NewMasker("cam1", maskspec.FailBlank)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets(testSets()); err != nil {
		t.Fatal(err)
	}
	m.SetView("A", true)
	var view atomic.Value
	view.Store("A")
	dyn := &failEvery{}
	sink := &markSink{}
	p, err := NewPipeline(PipelineConfig{Camera: "cam1", Masker: m, Sink: sink, Dynamic: dyn,
		Open: func(context.Context) (Source, error) { return &chanSource{view: &view, limit: 1 << 62}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for sink.frames.Load() < 40 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ran, out := dyn.n.Load(), sink.frames.Load()
	if sink.unmarked.Load() != 0 || out > ran/2+1 {
		t.Errorf("%d frames through the stage, %d encoded, %d of them without it", ran, out, sink.unmarked.Load())
	}
}

// markSink counts frames and those the dynamic stage did not mark.
type markSink struct{ frames, unmarked atomic.Int64 }

func (k *markSink) Write(f *Frame) error {
	k.frames.Add(1)
	if y, _, _ := f.Planes(); y[1] != 77 {
		k.unmarked.Add(1)
	}
	return nil
}
func (k *markSink) Close() error { return nil }
