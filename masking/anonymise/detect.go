package anonymise

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"path/filepath"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
	"velo/masking/anonymise/spec"
)

// job is one frame's luma plane for the detector.
type job struct {
	n     uint64
	view  string // the view the frame was masked for
	w, h  int
	y     []byte // owned by the job
	noHOG bool   // skip the HOG detector on this one (subject copies)
}

// result is what the detector found on job n.
type result struct {
	n     uint64
	view  string
	boxes []Box
	err   error
}

// detector owns the gocv objects; only its goroutine uses them.
type detector struct {
	cfg      Config
	hog      *gocv.HOGDescriptor
	haar     []gocv.CascadeClassifier
	haarKind []Detector
	motionOn bool
	mog      map[string]*mog // a background model per view
	fg       []byte          // the foreground mask
	// autoRate: the background model learns at OpenCV's own rate (fast
	// at first). A subject copy wants that: it has no minutes of history,
	// and the ghosts a slow model leaves where people stood in its first
	// frame would be masked over the subject.
	autoRate bool
}

func newDetector(cfg Config) (*detector, error) {
	d := &detector{cfg: cfg}
	for _, k := range cfg.Detectors {
		switch k {
		case HOG:
			h := gocv.NewHOGDescriptor()
			people := gocv.HOGDefaultPeopleDetector()
			_ = h.SetSVMDetector(people)
			people.Close()
			d.hog = &h
		case Motion:
			d.motionOn, d.mog = true, map[string]*mog{}
		default:
			c := gocv.NewCascadeClassifier()
			path := filepath.Join(cfg.CascadeDir, spec.Cascades[k])
			if !c.Load(path) {
				c.Close()
				d.close()
				return nil, fmt.Errorf("anonymise: camera %q: cascade %s did not load", cfg.Camera, path)
			}
			d.haar = append(d.haar, c)
			d.haarKind = append(d.haarKind, k)
		}
	}
	return d, nil
}

func (d *detector) close() {
	if d.hog != nil {
		d.hog.Close()
	}
	for i := range d.haar {
		d.haar[i].Close()
	}
	for _, m := range d.mog {
		m.close()
	}
}

// run answers jobs until in is closed.
func (d *detector) run(in <-chan job, out chan<- result) {
	defer d.close()
	for j := range in {
		boxes, err := d.detect(j)
		out <- result{n: j.n, view: j.view, boxes: boxes, err: err}
	}
}

// slowDown, set by tests only, runs before each detection (a detector
// that falls behind).
var slowDown atomic.Int64 // nanoseconds

// detect runs every selected detector on a downscaled copy of j.
func (d *detector) detect(j job) ([]Box, error) {
	boxes, _, err := d.detectKinds(j)
	return boxes, err
}

// detectKinds is detect with the detector that found each box.
func (d *detector) detectKinds(j job) (boxes []Box, kinds []Detector, err error) {
	if d := slowDown.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	defer func() {
		if r := recover(); r != nil {
			boxes, kinds, err = nil, nil, fmt.Errorf("anonymise: camera %q: detector: %v", d.cfg.Camera, r)
		}
	}()
	if j.w <= 0 || j.h <= 0 || len(j.y) < j.w*j.h {
		return nil, nil, errors.New("anonymise: bad frame for the detector")
	}
	full, err := gocv.NewMatFromBytes(j.h, j.w, gocv.MatTypeCV8UC1, j.y[:j.w*j.h])
	if err != nil {
		return nil, nil, err
	}
	defer full.Close()
	sw := d.cfg.DetectWidth
	sh := max(1, j.h*sw/j.w)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(full, &small, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	var px []image.Rectangle
	add := func(k Detector, rs []image.Rectangle) {
		px = append(px, rs...)
		for range rs {
			kinds = append(kinds, k)
		}
	}
	if d.hog != nil && !j.noHOG {
		add(HOG, d.hog.DetectMultiScaleWithParams(small, 0, image.Pt(8, 8), image.Pt(8, 8), 1.05, 2, false))
	}
	if len(d.haar) > 0 {
		eq := gocv.NewMat()
		gocv.EqualizeHist(small, &eq)
		for i := range d.haar {
			minSz, maxSz := image.Pt(max(12, sw/40), max(12, sw/40)), image.Point{}
			if d.haarKind[i] == Plate {
				// A plate is small and wide: a third of the frame's width is
				// already a car at the lens (the cascade's larger boxes
				// are road and walls).
				maxSz = image.Pt(sw/3, sh/6)
			}
			add(d.haarKind[i], d.haar[i].DetectMultiScaleWithParams(eq, 1.1, 3, 0, minSz, maxSz))
		}
		eq.Close()
	}
	if d.motionOn {
		moving, err := d.motion(small, j.view)
		if err != nil {
			return nil, nil, fmt.Errorf("anonymise: camera %q: %w", d.cfg.Camera, err)
		}
		add(Motion, moving)
	}
	for _, r := range px {
		boxes = append(boxes, Box{float64(r.Min.X) / float64(sw), float64(r.Min.Y) / float64(sh), float64(r.Max.X) / float64(sw), float64(r.Max.Y) / float64(sh)})
	}
	return boxes, kinds, nil
}

// motionHistory is the background model's memory in detections: it learns
// each frame at 1/motionHistory from the second one on, the rate OpenCV's
// MOG2 only reaches after 500 frames by default (it learns at 1/2n on the
// n-th, so a person standing still in the first minutes after a start
// faded into the background within a few dozen detections, head and torso
// first). At 1/1000 a pixel that stays the same takes about 100 detections
// to become background.
const motionHistory = 1000

// motion returns the bounding boxes of the moving blobs.
func (d *detector) motion(small gocv.Mat, view string) ([]image.Rectangle, error) {
	m := d.mog[view]
	if m == nil {
		// A view seen for the first time: its model starts from this
		// frame. A PTZ camera keeps one per preset, so that a view it
		// comes back to is compared with its own background.
		m = newMOG(motionHistory, 24)
		d.mog[view] = m
	}
	w, h := small.Cols(), small.Rows()
	src, err := small.DataPtrUint8()
	if err != nil {
		return nil, err
	}
	if len(d.fg) != w*h {
		d.fg = make([]byte, w*h)
	}
	rate := 1 / float64(motionHistory)
	if d.autoRate {
		rate = -1
	}
	if err := m.apply(src, w, h, d.fg, rate); err != nil {
		return nil, err
	}
	fg, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, d.fg)
	if err != nil {
		return nil, err
	}
	defer fg.Close()
	gocv.Threshold(fg, &fg, 127, 255, gocv.ThresholdBinary)
	k := gocv.GetStructuringElement(gocv.MorphEllipse, image.Pt(5, 5))
	defer k.Close()
	gocv.MorphologyEx(fg, &fg, gocv.MorphOpen, k)
	gocv.DilateWithParams(fg, &fg, k, image.Pt(-1, -1), 3, gocv.BorderConstant, color.RGBA{})
	cs := gocv.FindContours(fg, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	defer cs.Close()
	minArea := small.Cols() * small.Rows() / 2000
	var out []image.Rectangle
	for i := 0; i < cs.Size(); i++ {
		r := gocv.BoundingRect(cs.At(i))
		if r.Dx()*r.Dy() >= minArea {
			out = append(out, r)
		}
	}
	return out, nil
}
