package masking

// ViewCheck verifies from the pixels that a frame shows the approved view
// (masking/viewcheck provides one, on OpenCV). The mask stage calls Check
// for every frame of an approved view, on the raw I420 frame, before it is
// masked; Check must not keep f. A frame whose check fails is never
// encoded.
type ViewCheck interface {
	Check(f *Frame, view string) ViewVerdict
}

// ViewVerdict is what a view check found.
type ViewVerdict struct {
	OK bool
	// Reason names the failed check: shift, scale, rotation, obstruction,
	// defocus, scene, no_reference.
	Reason string
	// ShiftX, ShiftY: the picture's displacement against the reference,
	// in pixels of the frame; Scale (1 = none) and Rotation (degrees) where
	// measured; Score: the structural match, 1 = identical, 0 = unrelated.
	ShiftX, ShiftY  float64
	Scale, Rotation float64
	Score           float64
}

// ReferenceHolder is a ViewCheck that can tell whether a view has a
// reference to be verified against.
type ReferenceHolder interface {
	HasReference(view string) bool
}

// ViewGuardConfig turns per-frame view verification on for a masker.
type ViewGuardConfig struct {
	Check ViewCheck
	// RestoreAfter is how many consecutive matching frames are needed
	// before output resumes, after a mismatch and after every approval
	// (default 5).
	RestoreAfter int
	// RequireReference fails the frames of a view that has no reference;
	// otherwise such a view streams and is reported unverified.
	RequireReference bool
	// Report is told of mismatches, restorations and unverified views. It
	// is called from the mask stage and must not block.
	Report func(ViewEvent)
}

// ViewEventKind names what the view guard reports.
type ViewEventKind string

// View guard events.
const (
	ViewMismatch   ViewEventKind = "view_mismatch"
	ViewRestored   ViewEventKind = "view_restored"
	ViewUnverified ViewEventKind = "view_unverified"
)

// ViewEvent is one view guard transition.
type ViewEvent struct {
	Kind    ViewEventKind
	View    string
	Verdict ViewVerdict
	// Frames: on view_restored, how many frames were failed while the
	// view did not match.
	Frames uint64
}

// viewState is the mask stage's memory of the view check.
type viewState struct {
	guard     *ViewGuardConfig // the guard the memory is about
	gen       uint64           // the state generation the memory is about
	pending   bool             // not (or no longer) verified: frames fail
	streak    int              // consecutive matching frames while pending
	failed    uint64           // frames failed since the mismatch was reported
	reported  bool             // a mismatch was reported and not yet restored
	unverNote map[string]bool
}

// verifies reports whether frames of view are verified from the pixels
// (a view without a reference keeps the masker's settle time after a
// move, as frames are not checked).
func (g *ViewGuardConfig) verifies(view string) bool {
	h, ok := g.Check.(ReferenceHolder)
	return !ok || h.HasReference(view)
}

// SetViewGuard turns per-frame view verification on (nil turns it off).
// Safe from any goroutine; it takes effect with the next frame.
func (m *Masker) SetViewGuard(g *ViewGuardConfig) {
	if g != nil && g.RestoreAfter <= 0 {
		c := *g
		c.RestoreAfter = 5
		g = &c
	}
	m.guard.Store(g)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.st.Load()
	ns := *old
	ns.gen = old.gen + 1 // frames masked before the change are refused
	m.st.Store(&ns)
}

// viewVerified runs the view check on f (mask stage only): false fails the
// frame. A mismatch also bumps the generation, so a frame masked earlier
// and not yet encoded is refused too.
func (m *Masker) viewVerified(f *Frame, st *state) bool {
	g := m.guard.Load()
	if g == nil {
		return true
	}
	vs := &m.vs
	if vs.guard != g { // a new guard: nothing reported under it yet
		*vs = viewState{guard: g}
	}
	if vs.gen != st.gen { // a new view, approval or mask set: verify afresh
		vs.gen, vs.pending, vs.streak = st.gen, true, 0
	}
	v := g.Check.Check(f, st.view)
	if v.Reason == "no_reference" && !v.OK {
		return m.unverified(g, st.view, v)
	}
	if !v.OK {
		m.mismatch(g, st.view, v)
		return false
	}
	if !vs.pending {
		return true
	}
	if vs.streak++; vs.streak < g.RestoreAfter {
		vs.failed++
		return false
	}
	vs.pending = false
	if vs.reported {
		vs.reported = false
		g.Report(ViewEvent{Kind: ViewRestored, View: st.view, Verdict: v, Frames: vs.failed})
	}
	return true
}

// mismatch fails the view until RestoreAfter matching frames; the first
// failed frame is reported and bumps the generation.
func (m *Masker) mismatch(g *ViewGuardConfig, view string, v ViewVerdict) {
	vs := &m.vs
	vs.pending, vs.streak = true, 0
	vs.failed++
	if vs.reported {
		return
	}
	vs.reported, vs.failed = true, 1
	m.mu.Lock()
	old := m.st.Load()
	ns := *old
	ns.gen = old.gen + 1
	m.st.Store(&ns)
	m.mu.Unlock()
	vs.gen = ns.gen
	g.Report(ViewEvent{Kind: ViewMismatch, View: view, Verdict: v})
}

// unverified handles a view without a reference: reported once per view,
// its frames failed when a reference is required.
func (m *Masker) unverified(g *ViewGuardConfig, view string, v ViewVerdict) bool {
	vs := &m.vs
	if vs.unverNote == nil {
		vs.unverNote = map[string]bool{}
	}
	if !vs.unverNote[view] {
		vs.unverNote[view] = true
		g.Report(ViewEvent{Kind: ViewUnverified, View: view, Verdict: v})
	}
	return !g.RequireReference
}
