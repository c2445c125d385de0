package viewcheck

import (
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"sync"

	"gocv.io/x/gocv"

	"velo/masking"
)

// Reasons a verdict gives (masking.ViewVerdict.Reason).
const (
	ReasonShift       = "shift"
	ReasonScale       = "scale"
	ReasonRotation    = "rotation"
	ReasonObstruction = "obstruction"
	ReasonDefocus     = "defocus"
	ReasonScene       = "scene"
	ReasonNoReference = "no_reference"
)

// Options tunes a Verifier; zero fields take the defaults.
type Options struct {
	// MaxShift is the largest shift, as a fraction of the frame width,
	// that moves a mask edge acceptably (default 0.01).
	MaxShift float64
	// MaxRotation (degrees) and MaxScale (|scale − 1|) override the
	// limits derived from MaxShift and the reference's Basis.Radius.
	MaxRotation float64
	MaxScale    float64
	// MinScore is the structural score below which the picture is another
	// scene (default 0.3).
	MinScore float64
	// DefocusRatio: a frame whose sharpness falls below this fraction of
	// the reference's is defocused (default 0.45).
	DefocusRatio float64
	// Obstruction: a frame on which this fraction of the reference's
	// textured blocks went flat is obstructed (default 0.5).
	Obstruction float64
	// DeepEvery: the deep check (obstruction, defocus, scale, rotation)
	// runs every DeepEvery-th frame of a view, and at once on an alarm
	// (default 25: once a second at 25 fps).
	DeepEvery int
}

func (o Options) withDefaults() Options {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxShift, 0.01)
	def(&o.MinScore, 0.3)
	def(&o.DefocusRatio, 0.45)
	def(&o.Obstruction, 0.5)
	if o.DeepEvery <= 0 {
		o.DeepEvery = 25
	}
	return o
}

// Tuning of the per-frame alarm that starts a deep check at once.
const (
	// alarmScoreDrop: the score fell below this fraction of its usual
	// value for the reference.
	alarmScoreDrop = 0.75
	// alarmSharpDrop: the half-size sharpness fell below this fraction of
	// the reference's.
	alarmSharpDrop = 0.8
	// flatEnergy: a block whose energy fell below this fraction of the
	// reference's is flat.
	flatEnergy = 0.1
)

// Verifier checks frames against references; it implements
// masking.ViewCheck. Its methods may be called from several goroutines
// (they are serialised).
type Verifier struct {
	opts  Options
	mu    sync.Mutex
	views map[string]*viewState
	work  map[image.Point]*workspace
}

var _ masking.ViewCheck = (*Verifier)(nil)

// New builds a Verifier for one camera's references (several per view
// allowed, e.g. day and night). It keeps refs: do not change them after.
func New(refs []*Reference, opts Options) (*Verifier, error) {
	v := &Verifier{opts: opts.withDefaults(), views: map[string]*viewState{}, work: map[image.Point]*workspace{}}
	for i, r := range refs {
		if err := r.check(); err != nil {
			v.Close()
			return nil, fmt.Errorf("view verifier: reference %d: %w", i+1, err)
		}
		if r.Camera != refs[0].Camera {
			v.Close()
			return nil, fmt.Errorf("view verifier: references of cameras %q and %q: one verifier serves one camera", refs[0].Camera, r.Camera)
		}
		if err := v.add(r); err != nil {
			v.Close()
			return nil, fmt.Errorf("view verifier: camera %q preset %q: %w", r.Camera, r.Preset, err)
		}
	}
	return v, nil
}

// add prepares r for checking its view.
func (v *Verifier) add(r *Reference) error {
	size := image.Pt(r.Width, r.Height)
	if v.work[size] == nil {
		ws, err := newWorkspace(r.Width, r.Height)
		if err != nil {
			return err
		}
		v.work[size] = ws
	}
	rm, err := newRefModel(r, v.opts, v.work[size])
	if err != nil {
		return err
	}
	vs := v.views[r.Preset]
	if vs == nil {
		vs = &viewState{}
		v.views[r.Preset] = vs
	}
	vs.refs = append(vs.refs, rm)
	vs.mixed = vs.mixed || r.Night != vs.refs[0].ref.Night
	return nil
}

// Close frees the Verifier's Mats; Check must not be called after.
func (v *Verifier) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, vs := range v.views {
		for _, rm := range vs.refs {
			rm.close()
		}
	}
	for _, ws := range v.work {
		ws.close()
	}
	v.views, v.work = nil, nil
}

// Check verifies that f shows view (a preset token, "" for a fixed
// camera). It does not keep f.
func (v *Verifier) Check(f *masking.Frame, view string) masking.ViewVerdict {
	v.mu.Lock()
	defer v.mu.Unlock()
	vs := v.views[view]
	if vs == nil || len(vs.refs) == 0 {
		return masking.ViewVerdict{Reason: ReasonNoReference, Scale: 1}
	}
	if f == nil || f.W < 16 || f.H < 16 || len(f.Data) < f.W*f.H*3/2 {
		return masking.ViewVerdict{Reason: ReasonScene, Scale: 1}
	}
	vs.frames++
	deep := vs.frames%uint64(v.opts.DeepEvery) == 1 || v.opts.DeepEvery == 1
	var first masking.ViewVerdict
	var prepared []*workspace
	for i, rm := range vs.candidates(vs.mixed && monochrome(f)) {
		ws := v.work[image.Pt(rm.ref.Width, rm.ref.Height)]
		if !slices.Contains(prepared, ws) {
			if err := ws.prepare(f); err != nil {
				return masking.ViewVerdict{Reason: ReasonScene, Scale: 1}
			}
			prepared = append(prepared, ws)
		}
		verdict := v.checkRef(rm, ws, deep || i > 0)
		verdict.ShiftX *= float64(f.W) / float64(rm.ref.Width)
		verdict.ShiftY *= float64(f.H) / float64(rm.ref.Height)
		if verdict.OK {
			vs.last = rm
			return verdict
		}
		if i == 0 {
			first = verdict
		}
	}
	return first
}

// viewState is one view's references and what the checks learnt of them.
type viewState struct {
	refs   []*refModel
	mixed  bool // day and night references
	frames uint64
	last   *refModel // the reference the last good frame matched
}

// candidates orders the references to try: those of the frame's kind
// (night for a monochrome frame) when the view has any, the one that
// matched last first.
func (vs *viewState) candidates(mono bool) []*refModel {
	var kind []*refModel
	for _, rm := range vs.refs {
		if rm.ref.Night == mono {
			kind = append(kind, rm)
		}
	}
	if len(kind) == 0 {
		kind = append(kind, vs.refs...)
	}
	for i, rm := range kind {
		if rm == vs.last && i > 0 {
			kind[0], kind[i] = kind[i], kind[0]
		}
	}
	return kind
}

// monochrome: the chroma planes sit at 128 (an IR picture), sampled on
// a sparse grid.
func monochrome(f *masking.Frame) bool {
	_, u, v := f.Planes()
	cw, ch := f.W/2, f.H/2
	var du, dv, n int
	for y := 0; y < ch; y += 32 {
		for x := 0; x < cw; x += 8 {
			i := y*cw + x
			du += absDiff(u[i], 128)
			dv += absDiff(v[i], 128)
			n++
		}
	}
	return n > 0 && du < 3*n && dv < 3*n
}

func absDiff(a, b byte) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// limits are a reference's thresholds in reference pixels and degrees.
type limits struct {
	shift, rotation, scale float64
}

func viewLimits(r *Reference, o Options) limits {
	l := limits{shift: o.MaxShift * float64(r.Width), rotation: o.MaxRotation, scale: o.MaxScale}
	radius := math.Max(r.Basis.Radius, 1e-3)
	if l.rotation <= 0 {
		l.rotation = o.MaxShift / radius * 180 / math.Pi
	}
	if l.scale <= 0 {
		l.scale = o.MaxShift / radius
	}
	return l
}

// refModel is a reference prepared for checking, and its running state.
type refModel struct {
	ref    *Reference
	lim    limits
	valid  []bool
	runs   [][][2]int // valid as runs
	G      []float32
	global gocv.Mat // spectrum of the half-size structure (correlator)
	blocks []float64
	sharp  float64
	tiles  []tile
	half   *structure // at half size, for the per-frame score
	validH []bool
	runsH  [][][2]int // validH as runs
	sharpH float64    // sharpness at half size
	// blocksH are the half-size block energies (the per-frame obstruction
	// measure); mirrors the half-size structure flipped (the per-frame
	// flip test).
	blocksH []float64
	mirrors []mirror
	// The distinctive part of the view (see distinctive), when it is
	// scored on its own (split): distinctH and periodicH split validH,
	// their runs split runsH; distinct is the full-size mask the global
	// shift looks at; minDistinctN is the samples its score needs.
	split                        bool
	distinct                     []bool
	distinctH, periodicH         []bool
	distinctRunsH, periodicRunsH [][][2]int
	minDistinctN                 int
	probe                        probe // where the motion test scores
	// usual is the running score of good deep checks (0 until the first);
	// last is the last good deep check's verdict, lastT its transform.
	usual float64
	last  masking.ViewVerdict
	lastT similarity
	// trusted: the last deep check passed; until then every frame gets one.
	trusted bool
}

func newRefModel(r *Reference, o Options, ws *workspace) (*refModel, error) {
	st := newStructure(r.Width, r.Height)
	st.compute(r.Luma)
	rm := &refModel{ref: r, lim: viewLimits(r, o), valid: validity(r.Exclude, r.Width, r.Height), G: st.G}
	rm.last = masking.ViewVerdict{OK: true, Scale: 1}
	hw, hh := r.Width/2, r.Height/2
	half := newHalfStructure(hw, hh)
	hp, err := newPlane(hw, hh)
	if err == nil {
		var luma []byte
		luma, err = halfLuma(&hp, r.Luma, r.Width, r.Height)
		half.compute(luma)
		_ = hp.mat.Close()
	}
	if err != nil {
		return nil, err
	}
	rm.half = half
	rm.validH = validity(halveExclusion(r.Exclude, r.Width, r.Height), hw, hh)
	rm.runsH = validRuns(rm.validH, hw, hh)
	rm.sharpH = half.sharpness(rm.runsH)
	rm.blocksH, _ = half.runBlockEnergy(rm.runsH, blockSize/2, nil, nil)
	rm.mirrors = newMirrors(half, rm.validH)
	rm.splitDistinct(st)
	P := make([]float32, r.Width*r.Height)
	zeroMean(P, rm.G, rm.valid)
	rm.tiles = newTiles(P, rm.G, rm.valid, r.Width, r.Height, ws.tilePC)
	zeroMean(P, rm.G, rm.distinct)
	halve(ws.globalPC.input(), P, r.Width, r.Height)
	rm.global = ws.globalPC.reference(ws.globalPC.input())
	rm.blocks, _ = st.blockEnergy(rm.valid, blockSize, nil, nil)
	rm.runs = validRuns(rm.valid, r.Width, r.Height)
	rm.sharp = st.sharpness(rm.runs)
	return rm, nil
}

func (rm *refModel) close() {
	_ = rm.global.Close()
	for i := range rm.tiles {
		_ = rm.tiles[i].ref.Close()
	}
}

// workspace is the per-size state a frame is prepared in, reused across
// frames.
type workspace struct {
	w, h     int
	down     downscaler
	small    gocv.Mat // downscaled luma
	st       *structure
	P        []float32  // zero-mean structure, per reference
	PD       []float32  // the same, distinctive part only (global shift)
	half     *structure // at half size, every frame
	halfLuma plane
	fullDone bool // st is the frame's
	globalPC *correlator
	tilePC   *correlator
	blocks   []float64 // block energies, full and half size
	blocksH  []float64
	count    []int // blockEnergy's scratch
}

func newWorkspace(w, h int) (*workspace, error) {
	hp, err := newPlane(w/2, h/2)
	if err != nil {
		return nil, err
	}
	return &workspace{
		w: w, h: h, small: gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U), st: newStructure(w, h),
		P: make([]float32, w*h), PD: make([]float32, w*h), half: newHalfStructure(w/2, h/2), halfLuma: hp,
		globalPC: newCorrelator(w/2, h/2), tilePC: newCorrelator(tileSize, tileSize),
	}, nil
}

func (ws *workspace) close() {
	ws.down.close()
	_ = ws.halfLuma.mat.Close()
	_ = ws.small.Close()
	ws.globalPC.close()
	ws.tilePC.close()
}

// prepare downscales f's luma (a Mat over the Y plane, no copy) and
// computes its structure at half size; full computes it at full size.
func (ws *workspace) prepare(f *masking.Frame) error {
	y, _, _ := f.Planes()
	if err := ws.down.luma(y, f.W, f.H, &ws.small, ws.w, ws.h); err != nil {
		return err
	}
	luma, err := ws.small.DataPtrUint8()
	if err != nil || len(luma) != ws.w*ws.h {
		return errors.New("downscaled luma unavailable")
	}
	half, err := halfLuma(&ws.halfLuma, luma, ws.w, ws.h)
	if err != nil {
		return err
	}
	ws.half.compute(half)
	ws.fullDone = false
	return nil
}

func (ws *workspace) full() {
	if ws.fullDone {
		return
	}
	luma, _ := ws.small.DataPtrUint8()
	ws.st.compute(luma)
	ws.fullDone = true
}
