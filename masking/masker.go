package masking

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"velo/masking/maskspec"
)

// Verdict is what Process did with a frame.
type Verdict int

// Verdicts.
const (
	Masked Verdict = iota
	Dropped
	Blanked
)

// Reason names why a frame was not masked.
type Reason string

// Reasons a frame is dropped or blanked.
const (
	ReasonNotApproved Reason = "view_not_approved"
	ReasonNoMaskSet   Reason = "no_mask_set"
	ReasonMaskError   Reason = "mask_error"
	ReasonStale       Reason = "stale_generation"
	ReasonScheduled   Reason = "scheduled_off"
	// ReasonViewMismatch: the pixels do not show the approved view (or
	// not yet for enough consecutive frames).
	ReasonViewMismatch Reason = "view_mismatch"
)

// state is immutable once published; a change publishes a new one with a
// higher generation.
type state struct {
	gen      uint64
	sets     map[string]*maskspec.MaskSet
	view     string
	approved bool
	// approvedAt: frames captured before it are not trusted to show the
	// approved view (they may have been in the decoder during the move).
	approvedAt time.Time
}

// Masker applies the current mask set of the current view to frames and
// fails closed. Configuration methods (SetMaskSets, SetView) may be called
// from any goroutine; Process and Admit are called by the pipeline's mask and
// encode stages. Every change bumps the generation: a frame masked under an
// older generation is refused by Admit.
type Masker struct {
	camera string
	fail   maskspec.FailMode
	blank  maskspec.YUV
	settle time.Duration
	now    func() time.Time

	mu    sync.Mutex // serialises writers of st
	st    atomic.Pointer[state]
	cache rasterCache // used by the mask stage only
	guard atomic.Pointer[ViewGuardConfig]
	// onRaised is told, once per raster, of masks raised to the strength
	// floor for the frame size (G-4.5).
	onRaised atomic.Pointer[func(note string)]
	vs       viewState // used by the mask stage only

	stats Stats
}

// DefaultSettle is how long after SetView(…, true) frames are still failed:
// frames captured earlier may show the camera on its way.
const DefaultSettle = 500 * time.Millisecond

// SetSettle changes the hold-off after an approval (tests use 0).
func (m *Masker) SetSettle(d time.Duration) {
	m.mu.Lock()
	m.settle = d
	m.mu.Unlock()
}

// NewMasker returns a masker for camera with no mask sets and the view not
// approved: until SetMaskSets and SetView are called, every frame fails.
func NewMasker(camera string, fail maskspec.FailMode) (*Masker, error) {
	switch fail {
	case maskspec.FailDrop, maskspec.FailBlank:
	case "":
		fail = maskspec.FailBlank
	default:
		return nil, fmt.Errorf("masking: camera %q: fail mode %q is not drop or blank", camera, fail)
	}
	m := &Masker{camera: camera, fail: fail, blank: maskspec.Black(), settle: DefaultSettle, now: time.Now}
	m.st.Store(&state{gen: 1, sets: map[string]*maskspec.MaskSet{}})
	m.stats.init()
	return m, nil
}

// OnStrengthRaised sets f to be told, once per mask set and frame size,
// of each mask whose pixelate block or blur radius was raised to the floor
// for the frame's width (maskspec.FloorBlock, FloorStrength; G-4.5).
func (m *Masker) OnStrengthRaised(f func(note string)) { m.onRaised.Store(&f) }

// Generation returns the current generation.
func (m *Masker) Generation() uint64 { return m.st.Load().gen }

// SetMaskSets validates sets (one per view) and, only if all are valid,
// replaces the current ones. On error the old sets stay in force.
func (m *Masker) SetMaskSets(sets []maskspec.MaskSet) (uint64, error) {
	next := map[string]*maskspec.MaskSet{}
	for i := range sets {
		s := sets[i]
		s.Masks = append([]maskspec.Mask(nil), s.Masks...)
		if s.Camera == "" {
			s.Camera = m.camera
		}
		if err := s.Validate(); err != nil {
			return 0, err
		}
		if _, dup := next[s.Preset]; dup {
			return 0, fmt.Errorf("masking: camera %q: two mask sets for preset %q", m.camera, s.Preset)
		}
		next[s.Preset] = &s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.st.Load()
	ns := &state{gen: old.gen + 1, sets: next, view: old.view, approved: old.approved, approvedAt: old.approvedAt}
	m.st.Store(ns)
	return ns.gen, nil
}

// SetView tells the masker which approved view (preset token, "" for a
// fixed camera) the camera is in, and whether it is there. approved=false
// (PTZ moving, drifted, position unknown, outside schedule) fails every
// frame until the next SetView(…, true).
func (m *Masker) SetView(preset string, approved bool) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.st.Load()
	if old.view == preset && old.approved == approved {
		return old.gen
	}
	ns := &state{gen: old.gen + 1, sets: old.sets, view: preset, approved: approved}
	if approved {
		ns.approvedAt = m.now().Add(m.settle)
		if g := m.guard.Load(); g != nil && g.verifies(preset) {
			// The pixels decide when the move has settled: the view check
			// wants RestoreAfter matching frames first.
			ns.approvedAt = m.now()
		}
	}
	m.st.Store(ns)
	return ns.gen
}

// Process masks f in place with the current view's mask set, or fails it
// (drop: returns Dropped and leaves f untouched for reuse; blank: overwrites
// f with the blank colour). The frame records the generation it was
// masked with.
func (m *Masker) Process(f *Frame) (Verdict, Reason) {
	m.stats.in.Add(1)
	f.Masked, f.Generation, f.View = false, 0, ""
	st := m.st.Load()
	if !st.approved || f.Captured.Before(st.approvedAt) {
		return m.failFrame(f, st, ReasonNotApproved)
	}
	set := st.sets[st.view]
	if set == nil {
		return m.failFrame(f, st, ReasonNoMaskSet)
	}
	if !m.viewVerified(f, st) {
		return m.failFrame(f, m.st.Load(), ReasonViewMismatch)
	}
	r, fresh, err := m.cache.get(st.gen, set, f.W, f.H)
	if err != nil {
		return m.failFrame(f, st, ReasonMaskError)
	}
	if fresh {
		m.tellRaised(r)
	}
	t0 := time.Now()
	if err := r.Apply(f); err != nil {
		return m.failFrame(f, st, ReasonMaskError)
	}
	m.stats.maskTime.add(time.Since(t0))
	f.Masked, f.Generation, f.View = true, st.gen, st.view
	return Masked, ""
}

func (m *Masker) failFrame(f *Frame, st *state, why Reason) (Verdict, Reason) {
	m.stats.count(why)
	if m.fail == maskspec.FailBlank && len(f.Data) == f.W*f.H*3/2 && f.W > 0 {
		y, u, v := f.Planes()
		fillPlane(y, m.blank.Y)
		fillPlane(u, m.blank.U)
		fillPlane(v, m.blank.V)
		f.Masked, f.Generation = true, st.gen
		m.stats.blanked.Add(1)
		return Blanked, why
	}
	m.stats.dropped.Add(1)
	return Dropped, why
}

// Admit is the encoder's last check: only a frame masked (or blanked) under
// the current generation may be encoded. A stale frame is counted as
// dropped.
func (m *Masker) Admit(f *Frame) bool {
	if f.Masked && f.Generation == m.st.Load().gen {
		m.stats.out.Add(1)
		return true
	}
	m.stats.count(ReasonStale)
	m.stats.dropped.Add(1)
	return false
}

// Stats returns a snapshot of the counters.
func (m *Masker) Stats() StatsSnapshot { return m.stats.snapshot() }

// rasterCache keeps the raster of the current (generation, size).
type rasterCache struct {
	gen  uint64
	w, h int
	r    *Raster
	err  error
}

// get returns the raster for (gen, w, h) and whether it was just built.
func (c *rasterCache) get(gen uint64, set *maskspec.MaskSet, w, h int) (*Raster, bool, error) {
	if c.r != nil && c.gen == gen && c.w == w && c.h == h || c.err != nil && c.gen == gen && c.w == w && c.h == h {
		return c.r, false, c.err
	}
	r, err := Rasterize(set, w, h)
	c.gen, c.w, c.h, c.r, c.err = gen, w, h, r, err
	return r, err == nil, err
}

func (m *Masker) tellRaised(r *Raster) {
	if f := m.onRaised.Load(); f != nil {
		for _, note := range r.Raised {
			(*f)(note)
		}
	}
}

// Stats are the masker's counters. Safe for concurrent use.
type Stats struct {
	in, out, dropped, blanked atomic.Uint64
	mu                        sync.Mutex
	reasons                   map[Reason]uint64
	maskTime                  durations
}

func (s *Stats) init() { s.reasons = map[Reason]uint64{} }

func (s *Stats) count(r Reason) {
	s.mu.Lock()
	s.reasons[r]++
	s.mu.Unlock()
}

// StatsSnapshot is a copy of the counters.
type StatsSnapshot struct {
	In, Out, Dropped, Blanked uint64
	Reasons                   map[Reason]uint64
	MaskP50, MaskP99          time.Duration
}

func (s *Stats) snapshot() StatsSnapshot {
	s.mu.Lock()
	r := make(map[Reason]uint64, len(s.reasons))
	for k, v := range s.reasons {
		r[k] = v
	}
	s.mu.Unlock()
	p50, p99 := s.maskTime.percentiles()
	return StatsSnapshot{In: s.in.Load(), Out: s.out.Load(), Dropped: s.dropped.Load(), Blanked: s.blanked.Load(), Reasons: r, MaskP50: p50, MaskP99: p99}
}

// durations keeps the last 1024 samples for percentiles.
type durations struct {
	mu   sync.Mutex
	ring [1024]time.Duration
	n    int
}

func (d *durations) add(v time.Duration) {
	d.mu.Lock()
	d.ring[d.n%len(d.ring)] = v
	d.n++
	d.mu.Unlock()
}

func (d *durations) percentiles() (p50, p99 time.Duration) {
	d.mu.Lock()
	n := min(d.n, len(d.ring))
	s := append([]time.Duration(nil), d.ring[:n]...)
	d.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[n*50/100], s[min(n*99/100, n-1)]
}
