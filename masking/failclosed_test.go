package masking

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"velo/masking/maskspec"
)

// Marker values: a checkerboard of these two luma values is drawn in the
// sensitive region of every source frame; nothing else uses them.
const markA, markB = 250, 5

const fw, fh = 160, 96

// sensitive is the region to hide in view "A" (left) and view "B" (right).
var sensitive = map[string][]maskspec.Point{
	"A": {{X: 0.05, Y: 0.1}, {X: 0.45, Y: 0.1}, {X: 0.45, Y: 0.8}, {X: 0.05, Y: 0.8}},
	"B": {{X: 0.55, Y: 0.1}, {X: 0.95, Y: 0.1}, {X: 0.95, Y: 0.8}, {X: 0.55, Y: 0.8}},
}

var scenes = map[string][]byte{}

func init() {
	for view := range sensitive {
		f := &Frame{}
		renderScene(f, view)
		scenes[view] = f.Data
	}
}

// drawScene fills a frame with the pre-rendered scene of view.
func drawScene(f *Frame, view string) {
	if cap(f.Data) < fw*fh*3/2 {
		f.Data = make([]byte, fw*fh*3/2)
	}
	f.W, f.H, f.Data = fw, fh, f.Data[:fw*fh*3/2]
	copy(f.Data, scenes[view])
}

// renderScene: plain grey, marker checkerboard over the sensitive region.
func renderScene(f *Frame, view string) {
	f.W, f.H, f.Data = fw, fh, make([]byte, fw*fh*3/2)
	y, u, v := f.Planes()
	fillPlane(y, 120)
	fillPlane(u, 128)
	fillPlane(v, 128)
	poly := sensitive[view]
	for yy := 0; yy < fh; yy++ {
		for xx := 0; xx < fw; xx++ {
			if insideRef(poly, fw, fh, xx, yy) {
				if (xx/2+yy/2)%2 == 0 {
					y[yy*fw+xx] = markA
				} else {
					y[yy*fw+xx] = markB
				}
			}
		}
	}
}

func markerPixels(f *Frame) int {
	y, _, _ := f.Planes()
	n := 0
	for _, b := range y {
		if b == markA || b == markB {
			n++
		}
	}
	return n
}

func testSets() []maskspec.MaskSet {
	// Masks a little larger than the sensitive regions.
	grow := func(p []maskspec.Point) []maskspec.Point {
		return []maskspec.Point{{X: p[0].X - 0.02, Y: p[0].Y - 0.02}, {X: p[1].X + 0.02, Y: p[1].Y - 0.02}, {X: p[2].X + 0.02, Y: p[2].Y + 0.02}, {X: p[3].X - 0.02, Y: p[3].Y + 0.02}}
	}
	return []maskspec.MaskSet{
		{Preset: "A", Masks: []maskspec.Mask{{Name: "left", Polygon: grow(sensitive["A"])}}},
		{Preset: "B", Masks: []maskspec.Mask{{Name: "right", Polygon: grow(sensitive["B"])}}},
	}
}

// 100 000 frames with faults injected at random: not one marker pixel gets
// out, and every injected fault is one dropped or blanked frame.
func TestFailClosedUnderInjectedFaults(t *testing.T) {
	for _, mode := range []maskspec.FailMode{maskspec.FailDrop, maskspec.FailBlank} {
		t.Run(string(mode), func(t *testing.T) {
			m, err := NewMasker("cam1", mode)
			if err != nil {
				t.Fatal(err)
			}
			m.SetSettle(0)
			if _, err := m.SetMaskSets(testSets()); err != nil {
				t.Fatal(err)
			}
			check := &switchedCheck{}
			m.SetViewGuard(&ViewGuardConfig{Check: check, RestoreAfter: 1, RequireReference: true, Report: func(ViewEvent) {}})
			m.SetView("A", true)
			rng := rand.New(rand.NewPCG(42, uint64(len(mode))))
			const frames = 100_000
			var injected, out, leaked int
			f := &Frame{}
			for i := 0; i < frames; i++ {
				drawScene(f, "A")
				fault := rng.IntN(12) // 0..4: a fault; else clean
				check.fail = fault == 4
				switch fault {
				case 0: // PTZ off preset
					m.SetView("A", false)
				case 1: // view without a mask set
					m.SetView("Z", true)
				case 2: // corrupt frame: the mask cannot be applied
					f.Data = f.Data[:len(f.Data)-1]
				}
				if fault <= 2 || fault == 4 {
					injected++
				}
				f.Captured = time.Now()
				v, _ := m.Process(f)
				if fault == 3 { // mask set switched between mask and encode
					if _, err := m.SetMaskSets(testSets()); err != nil {
						t.Fatal(err)
					}
					if v != Dropped {
						injected++
					}
				}
				if v != Dropped && m.Admit(f) {
					out++
					if f.W*f.H*3/2 != len(f.Data) {
						t.Fatal("a corrupt frame was admitted")
					}
					leaked += markerPixels(f)
				}
				// A bad new mask set is refused and the old one stays.
				if i%5000 == 0 {
					if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "A", Masks: []maskspec.Mask{{Name: "bad", Polygon: []maskspec.Point{{X: 0, Y: 0}, {X: 2, Y: 2}, {X: 0, Y: 1}}}}}}); !errors.Is(err, maskspec.ErrInvalidMask) {
						t.Fatalf("bad mask set accepted: %v", err)
					}
				}
				if fault <= 1 {
					m.SetView("A", true)
				}
			}
			s := m.Stats()
			t.Logf("%s: %d frames, %d injected, %d out, dropped %d, blanked %d, reasons %v, mask p50 %v p99 %v",
				mode, frames, injected, out, s.Dropped, s.Blanked, s.Reasons, s.MaskP50, s.MaskP99)
			if leaked != 0 {
				t.Fatalf("%d marker pixels left the masker", leaked)
			}
			if got := int(s.Dropped + s.Blanked); got != injected {
				t.Errorf("dropped+blanked = %d, injected = %d", got, injected)
			}
			if out+injected != frames && mode == maskspec.FailDrop {
				t.Errorf("out %d + injected %d != %d", out, injected, frames)
			}
			if injected < 30_000 {
				t.Errorf("only %d faults injected", injected)
			}
		})
	}
}

// chanSource yields scene frames for the current physical view.
type chanSource struct {
	view   *atomic.Value
	closed atomic.Bool
	n      atomic.Int64
	limit  int64
}

func (s *chanSource) Read(f *Frame) error {
	if s.n.Add(1) > s.limit {
		return errors.New("end of test stream")
	}
	drawScene(f, s.view.Load().(string))
	return nil
}
func (s *chanSource) Close() error { s.closed.Store(true); return nil }

// checkSink counts frames and marker pixels.
type checkSink struct {
	mu     sync.Mutex
	frames int
	leaked int
	masked int
	closed bool
}

func (k *checkSink) Write(f *Frame) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.frames++
	k.leaked += markerPixels(f)
	if y, _, _ := f.Planes(); y[0] == 120 { // scene grey: masked, not blanked
		k.masked++
	}
	return nil
}
func (k *checkSink) Close() error { k.mu.Lock(); k.closed = true; k.mu.Unlock(); return nil }

// A PTZ camera switching between two approved views, each with its own
// mask set, through the real three-stage pipeline: no frame is ever
// masked with the other view's set.
func TestMaskSetSwitchThroughPipeline(t *testing.T) {
	m, err := NewMasker("cam1", maskspec.FailBlank)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(5 * time.Millisecond)
	if _, err := m.SetMaskSets(testSets()); err != nil {
		t.Fatal(err)
	}
	var view atomic.Value
	view.Store("A")
	m.SetView("A", true)
	src := &chanSource{view: &view, limit: 1 << 62}
	sink := &checkSink{}
	p, err := NewPipeline(PipelineConfig{Camera: "cam1", Masker: m, Sink: sink,
		Open: func(context.Context) (Source, error) { return src, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := 0; i < 60; i++ {
		next := map[string]string{"A": "B", "B": "A"}[view.Load().(string)]
		m.SetView(view.Load().(string), false) // the lock sees the camera leave
		view.Store(next)                       // the camera is now elsewhere
		time.Sleep(time.Millisecond)           // (motion time, scene stream keeps flowing)
		m.SetView(next, true)                  // position confirmed: approved again
		time.Sleep(15 * time.Millisecond)
	}
	// Snapshot comes from the encoded (masked) stream.
	snap, err := p.Snapshot(ctx)
	if err != nil || markerPixels(snap) != 0 {
		t.Errorf("snapshot: %v, %d marker pixels", err, markerPixels(snap))
	}
	if jp, err := JPEG(snap, 80); err != nil || len(jp) < 100 {
		t.Errorf("JPEG: %d bytes, %v", len(jp), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("captured %d, encoded %d, sink %d (%d masked), dropped %d, blanked %d, reasons %v", st.Captured, st.Encoded, sink.frames, sink.masked, st.Dropped, st.Blanked, st.Reasons)
	if sink.leaked != 0 {
		t.Fatalf("%d marker pixels reached the encoder", sink.leaked)
	}
	if sink.frames < 100 || sink.masked < 50 || st.Blanked == 0 || !sink.closed || !src.closed.Load() {
		t.Errorf("pipeline did not really run: %+v", st)
	}
	if _, err := JPEG(&Frame{W: 2, H: 2, Data: make([]byte, 6)}, 80); err == nil {
		t.Error("JPEG of an unmasked frame")
	}
}

func TestPipelineReconnects(t *testing.T) {
	m, _ := NewMasker("cam1", maskspec.FailDrop)
	m.SetSettle(0)
	if _, err := m.SetMaskSets(testSets()); err != nil {
		t.Fatal(err)
	}
	m.SetView("A", true)
	var view atomic.Value
	view.Store("A")
	var opens atomic.Int64
	sink := &checkSink{}
	p, _ := NewPipeline(PipelineConfig{Camera: "cam1", Masker: m, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Open: func(context.Context) (Source, error) {
			if opens.Add(1)%3 == 0 {
				return nil, errors.New("connection refused")
			}
			return &chanSource{view: &view, limit: 10}, nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for p.Stats().Reconnects < 20 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Captured < 100 || sink.leaked != 0 {
		t.Errorf("stats %+v leaked %d", s, sink.leaked)
	}
}

// switchedCheck is a view check whose verdict the test sets per frame (the
// verifier itself is tested in masking/viewcheck).
type switchedCheck struct{ fail bool }

func (c *switchedCheck) Check(*Frame, string) ViewVerdict {
	if c.fail {
		return ViewVerdict{Reason: "shift", ShiftX: 40}
	}
	return ViewVerdict{OK: true, Score: 1}
}

// A view mismatch fails the frame at once, bumps the generation (a frame
// masked before it is not encoded), keeps failing until RestoreAfter
// matching frames, and is reported once with its restoration; a view
// without a reference fails when one is required and is reported once.
func TestViewGuard(t *testing.T) {
	m, _ := NewMasker("cam1", maskspec.FailDrop)
	if _, err := m.SetMaskSets(testSets()); err != nil {
		t.Fatal(err)
	}
	check := &switchedCheck{}
	var events []ViewEvent
	m.SetViewGuard(&ViewGuardConfig{Check: check, RestoreAfter: 3, Report: func(e ViewEvent) { events = append(events, e) }})
	m.SetView("A", true)
	f := &Frame{}
	step := func() (Verdict, bool) {
		drawScene(f, "A")
		f.Captured = time.Now()
		v, _ := m.Process(f)
		return v, v == Masked && m.Admit(f)
	}
	for i := 0; i < 2; i++ { // after an approval: RestoreAfter frames first
		if _, out := step(); out {
			t.Fatalf("frame %d after approval out before %d matches", i, 3)
		}
	}
	if _, out := step(); !out {
		t.Fatal("third matching frame not out")
	}
	drawScene(f, "A")
	f.Captured = time.Now()
	if v, _ := m.Process(f); v != Masked {
		t.Fatal("frame not masked")
	}
	check.fail = true
	if v, out := step(); v != Dropped || out {
		t.Fatalf("mismatching frame: %v out=%v", v, out)
	}
	if m.Admit(f) {
		t.Error("a frame masked before the mismatch was admitted after it")
	}
	check.fail = false
	for i := 0; i < 2; i++ {
		if _, out := step(); out {
			t.Fatalf("frame %d after the mismatch out before 3 matches", i)
		}
	}
	if _, out := step(); !out {
		t.Fatal("output not restored after 3 matches")
	}
	if len(events) != 2 || events[0].Kind != ViewMismatch || events[0].Verdict.ShiftX != 40 || events[1].Kind != ViewRestored || events[1].Frames != 3 {
		t.Fatalf("events %+v", events)
	}
	if s := m.Stats(); s.Reasons[ReasonViewMismatch] != 5 {
		t.Errorf("view_mismatch count %d, want 5 (2 after approval, 1 mismatch, 2 restoring)", s.Reasons[ReasonViewMismatch])
	}
	for _, required := range []bool{false, true} {
		events = nil
		m.SetViewGuard(&ViewGuardConfig{Check: noReference{}, RestoreAfter: 1, RequireReference: required, Report: func(e ViewEvent) { events = append(events, e) }})
		for i := 0; i < 3; i++ {
			if _, out := step(); out == required {
				t.Errorf("require_reference=%v: frame out=%v", required, out)
			}
		}
		if len(events) != 1 || events[0].Kind != ViewUnverified {
			t.Errorf("require_reference=%v: events %+v", required, events)
		}
	}
}

type noReference struct{}

func (noReference) Check(*Frame, string) ViewVerdict { return ViewVerdict{Reason: "no_reference"} }

// referencesFor is a view check with references for some views only.
type referencesFor map[string]bool

func (r referencesFor) Check(_ *Frame, view string) ViewVerdict {
	if !r[view] {
		return ViewVerdict{Reason: "no_reference"}
	}
	return ViewVerdict{OK: true, Score: 1}
}

func (r referencesFor) HasReference(view string) bool { return r[view] }

// After a move, a view verified from the pixels streams as soon as they
// match; a view without a reference keeps the settle time (nothing else
// tells that the move is over).
func TestSettleEndsOnThePixelsOnlyWhereVerified(t *testing.T) {
	m, _ := NewMasker("cam1", maskspec.FailDrop)
	if _, err := m.SetMaskSets(testSets()); err != nil {
		t.Fatal(err)
	}
	m.SetSettle(time.Hour)
	m.SetViewGuard(&ViewGuardConfig{Check: referencesFor{"A": true}, RestoreAfter: 1, Report: func(ViewEvent) {}})
	f := &Frame{}
	for view, wantOut := range map[string]bool{"A": true, "B": false} {
		m.SetView(view, true)
		drawScene(f, view)
		f.Captured = time.Now()
		if v, why := m.Process(f); (v == Masked) != wantOut {
			t.Errorf("view %s right after the move: %v (%s), want out=%v", view, v, why, wantOut)
		}
	}
}
