package anonymise

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
)

// Why names a zone fallback.
type Why string

// Why the zone was masked whole.
const (
	WhyLate  Why = "late"  // the detection was not back within its deadline
	WhyError Why = "error" // the detector failed
	WhyDark  Why = "dark"  // the zone is too dark to trust the detector
	// WhyView: the camera has just reached this view (a PTZ preset, or
	// the stage's start): no detection made on it is back yet.
	WhyView Why = "view"
)

// Stats are a stage's counters.
type Stats struct {
	Frames     uint64 // frames through Apply
	Detections uint64 // boxes found by the detector
	Runs       uint64 // detector runs answered
	Tracked    uint64 // boxes masked (detected or tracked), summed over frames
	Fallbacks  uint64 // frames whose whole zone was masked
	Reasons    map[Why]uint64
	DetectP50  time.Duration
	DetectP99  time.Duration
}

// Stage masks the people a detector finds in each frame. Apply is called by
// one goroutine (the pipeline's mask stage); Stats from any.
type Stage struct {
	cfg  Config
	jobs chan job
	res  chan result
	done chan struct{}

	n        uint64
	busy     bool      // a job is out
	sent     time.Time // when it went out
	late     bool      // the job out is past its deadline
	failWhy  Why       // the last detection's verdict ("" = trusted)
	tr       tracker   // the tracks of the current view
	view     string    // the view the tracks belong to
	started  bool      // a frame has been seen (view is set)
	awaiting bool      // no detection made on this view is back yet
	since    uint64    // the last frame before the switch to view
	gen      uint64    // the masker generation of the last frame
	last     time.Time // when the last frame was captured
	zones    map[string]maskspec.Mask

	mu    sync.Mutex
	st    Stats
	times []time.Duration
}

// New validates cfg, loads the detectors and starts the detector
// goroutine. Close stops it.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := newDetector(cfg)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, jobs: make(chan job, 1), res: make(chan result, 1), done: make(chan struct{}),
		tr: tracker{hold: cfg.Hold}, zones: map[string]maskspec.Mask{}}
	for _, v := range cfg.Views() {
		s.zones[v] = cfg.Mask("dynamic_zone", cfg.ZoneOf(v))
	}
	s.st.Reasons = map[Why]uint64{}
	go func() {
		defer close(s.done)
		d.run(s.jobs, s.res)
	}()
	return s, nil
}

// maxFrameGap: frames further apart than this (the camera stalled, or
// the masker withheld them) start the tracks again.
const maxFrameGap = 2 * time.Second

// Close stops the detector goroutine, after its current job.
func (s *Stage) Close() error {
	close(s.jobs)
	for {
		select {
		case <-s.res:
		case <-s.done:
			return nil
		}
	}
}

// Apply masks the people in f (I420, in place): the tracked boxes, or the
// whole zone of f's view when detection cannot be trusted for this frame.
// An error means f could not be masked; the caller must not encode it.
func (s *Stage) Apply(f *masking.Frame) error {
	if f.W <= 0 || f.H <= 0 || len(f.Data) != f.W*f.H*3/2 {
		return fmt.Errorf("anonymise: camera %q: bad frame %dx%d", s.cfg.Camera, f.W, f.H)
	}
	zone, ok := s.zones[f.View]
	if !ok {
		return fmt.Errorf("anonymise: camera %q: no dynamic_zone for view %q: frame refused", s.cfg.Camera, f.View)
	}
	// A new view, or the same view after a gap (the masker blanked or
	// dropped frames: a hold, a drift, a failed view check, lost video):
	// the tracks are stale, the zone is masked whole until a detection
	// made from now on is back.
	if !s.started || f.View != s.view || f.Generation != s.gen || f.Captured.Sub(s.last) > maxFrameGap {
		s.switchView(f.View)
	}
	s.gen, s.last = f.Generation, f.Captured
	s.n++
	s.collect(false)
	if !s.busy && (s.n-1)%uint64(s.cfg.Every) == 0 {
		s.submit(f)
		s.collect(true)
	}
	if s.busy && !s.late && time.Since(s.sent) > s.cfg.Deadline {
		s.late = true
	}
	why := s.failWhy
	if why == "" && s.awaiting {
		why = WhyView
	}
	if s.late {
		why = WhyLate
	}
	masks := []maskspec.Mask{}
	var boxes []Box
	if why != "" {
		masks = append(masks, zone)
	} else {
		boxes = s.tr.boxes(s.n, s.cfg.Margin)
		for i, b := range boxes {
			masks = append(masks, s.cfg.Mask(fmt.Sprintf("person %d", i+1), []maskspec.Point{{X: b.X0, Y: b.Y0}, {X: b.X1, Y: b.Y0}, {X: b.X1, Y: b.Y1}, {X: b.X0, Y: b.Y1}}))
		}
	}
	s.count(why, len(boxes))
	if len(masks) == 0 {
		return nil
	}
	r, err := masking.Rasterize(&maskspec.MaskSet{Camera: s.cfg.Camera, Preset: "dynamic", Masks: masks}, f.W, f.H)
	if err != nil {
		return err
	}
	return r.Apply(f)
}

// switchView starts the tracks of view afresh: until a detection made on
// one of its frames is back, its whole zone is masked. A detection still
// out for the previous view is discarded when it comes back.
func (s *Stage) switchView(view string) {
	s.view, s.started, s.awaiting, s.since = view, true, true, s.n
	s.failWhy = ""
	s.tr = tracker{hold: s.cfg.Hold}
}

// submit sends f's luma plane to the detector, after the darkness check.
func (s *Stage) submit(f *masking.Frame) {
	y, _, _ := f.Planes()
	if zoneLuma(y, f.W, f.H, s.cfg.ZoneOf(s.view)) < s.cfg.MinLuma {
		s.failWhy = WhyDark
		return
	}
	j := job{n: s.n, view: s.view, w: f.W, h: f.H, y: append([]byte(nil), y...)}
	s.jobs <- j // capacity 1 and !busy: never blocks
	s.busy, s.sent, s.late = true, time.Now(), false
}

// collect takes the detector's answer if there is one; wait: up to the
// deadline of the job out.
func (s *Stage) collect(wait bool) {
	if !s.busy {
		return
	}
	var r result
	if wait {
		t := time.NewTimer(max(0, s.cfg.Deadline-time.Since(s.sent)))
		defer t.Stop()
		select {
		case r = <-s.res:
		case <-t.C:
			return
		}
	} else {
		select {
		case r = <-s.res:
		default:
			return
		}
	}
	took := time.Since(s.sent)
	s.busy = false
	s.late = false
	if r.view != s.view || r.n <= s.since {
		// Made on a frame of the view the camera left (or of this view
		// before it left it): not for these.
		s.record(took, 0)
		return
	}
	if r.err != nil {
		s.failWhy = WhyError
		s.record(took, 0)
		return
	}
	// Back (if late, the frames it was made for were masked whole); its
	// boxes seed the tracker.
	s.failWhy, s.awaiting = "", false
	zone := s.cfg.ZoneOf(s.view)
	var in []Box
	for _, b := range r.boxes {
		if boxInZone(b, zone) {
			in = append(in, b)
		}
	}
	s.tr.update(r.n, in)
	s.record(took, len(in))
}

func (s *Stage) record(took time.Duration, found int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Runs++
	s.st.Detections += uint64(found)
	if len(s.times) < 1024 {
		s.times = append(s.times, took)
	} else {
		s.times[s.st.Runs%1024] = took
	}
}

func (s *Stage) count(why Why, boxes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Frames++
	s.st.Tracked += uint64(boxes)
	if why != "" {
		s.st.Fallbacks++
		s.st.Reasons[why]++
	}
}

// Stats returns a copy of the counters with the detector's p50 and p99.
func (s *Stage) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Reasons = make(map[Why]uint64, len(s.st.Reasons))
	for k, v := range s.st.Reasons {
		st.Reasons[k] = v
	}
	if n := len(s.times); n > 0 {
		t := append([]time.Duration(nil), s.times...)
		sort.Slice(t, func(i, j int) bool { return t[i] < t[j] })
		st.DetectP50, st.DetectP99 = t[n*50/100], t[min(n*99/100, n-1)]
	}
	return st
}
