package anonymise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"velo/masking"
	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// Subjects makes data subjects' copies (G-3.5): a time range of one
// camera's recordings, decoded, every frame searched by the detectors,
// the marked person followed through the range and every other person
// and every plate masked, encoded as an MP4 a person can play.
//
// It works in two passes over the decrypted segments, so the subject can
// be followed backwards from the mark as well as forwards: the first
// decodes and detects (keeping only boxes and a colour signature per
// box), the plan decides each frame's masks, the second decodes again,
// masks and encodes. It fails closed: a frame where the subject's track is
// not confident has every detected box masked (the subject's too); a
// frame the detectors cannot be trusted on (too dark, or they failed) is
// masked whole.
type Subjects struct {
	// Base: the detectors and how boxes are masked (Zone and Deadline
	// are not used: the whole frame is searched, offline).
	Base Config
}

// SubjectDetectors are the detectors of a subject copy unless the
// camera's dynamic masking names more: people (HOG, motion) and plates.
var SubjectDetectors = []Detector{HOG, Motion, Plate}

// SubjectHOGEvery: HOG, the costliest detector, runs on every 5th frame
// of a copy; motion and the cascades on every frame. The tracker carries
// HOG's boxes between.
const SubjectHOGEvery = 5

// SubjectMargin grows every masked box of a subject copy unless Base
// says otherwise: more than live (a copy is made once, and a slow walker's
// motion blob covers only the parts of them that moved).
const SubjectMargin = 0.5

// config is Base validated for a whole-frame search.
func (s Subjects) config(camera string) (Config, error) {
	cfg := s.Base
	cfg.Camera = camera
	if len(cfg.Detectors) == 0 {
		cfg.Detectors = SubjectDetectors
	}
	if cfg.Margin == 0 {
		cfg.Margin = SubjectMargin
	}
	cfg.Zone = []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// CopySubject makes job's copy and writes the MP4 to w once it is whole;
// the report lists every frame and what was masked on it. Nothing is
// written to w on an error.
func (s Subjects) CopySubject(ctx context.Context, job spec.SubjectJob, w io.Writer) (spec.SubjectReport, error) {
	var rep spec.SubjectReport
	if err := job.Check(); err != nil {
		return rep, err
	}
	cfg, err := s.config(job.Camera)
	if err != nil {
		return rep, err
	}
	if len(job.Segments) == 0 {
		return rep, fmt.Errorf("camera %q: no recording between %s and %s", job.Camera, job.From.Format(time.RFC3339), job.To.Format(time.RFC3339))
	}
	ob, err := observe(ctx, cfg, job)
	if err != nil {
		return rep, err
	}
	pl, err := makePlan(cfg, job.Mark, ob)
	if err != nil {
		return rep, fmt.Errorf("camera %q: %w", job.Camera, err)
	}
	tmp, err := os.CreateTemp(job.TempDir, "subject-*.mp4")
	if err != nil {
		return rep, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := render(ctx, cfg, job, ob, pl, tmp.Name()); err != nil {
		return rep, fmt.Errorf("camera %q: %w", job.Camera, err)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return rep, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return rep, err
	}
	return pl.report(cfg, job.Mark, ob), nil
}

// part is the piece of one segment inside the range.
type part struct {
	seg      spec.SubjectSegment
	from     time.Time // the first moment of the range in it
	ss, dur  float64   // seconds into the segment, and how long
	sameSize bool      // scaled to the first part's size and rate
}

// parts cuts the range into the segments' pieces (a segment ends where
// the next begins).
func parts(job spec.SubjectJob) []part {
	var out []part
	for i, g := range job.Segments {
		end := job.To
		if i+1 < len(job.Segments) && job.Segments[i+1].Start.Before(end) {
			end = job.Segments[i+1].Start
		}
		from := job.From
		if g.Start.After(from) {
			from = g.Start
		}
		if d := end.Sub(from).Seconds(); d > 0 {
			out = append(out, part{seg: g, from: from, ss: from.Sub(g.Start).Seconds(), dur: d, sameSize: len(out) > 0})
		}
	}
	return out
}

// frameFn is called with each frame of the range, its number and time.
type frameFn func(n int, at time.Time, seg string, f *masking.Frame) error

// decodeRange decodes every part in turn; the later ones are scaled to
// the first one's size and frame rate. It returns that size and rate.
func decodeRange(ctx context.Context, job spec.SubjectJob, fn frameFn) (w, h int, fps float64, rate string, err error) {
	n := 0
	for _, p := range parts(job) {
		k := 0
		sw, sh := 0, 0
		if p.sameSize {
			sw, sh = w, h
		}
		err = decodeSegment(ctx, p.seg.Feed, p.ss, p.dur, sw, sh, rate, func(y *y4mReader, f *masking.Frame) error {
			if w == 0 {
				w, h, fps, rate = y.W, y.H, y.FPS, y.rate
			}
			at := p.from.Add(time.Duration(float64(k) / fps * float64(time.Second)))
			k++
			n++
			return fn(n-1, at, p.seg.Name, f)
		})
		if err != nil {
			return 0, 0, 0, "", fmt.Errorf("segment %s: %w", p.seg.Name, err)
		}
	}
	if n == 0 {
		return 0, 0, 0, "", errors.New("no frame decoded in the range")
	}
	return w, h, fps, rate, nil
}

// det is one detection: its box, detector and colour signature.
type det struct {
	b Box
	k Detector
	h signature
}

// seen is what the first pass found on one frame.
type seen struct {
	at   time.Time
	seg  string
	why  string // not "": the detectors cannot be trusted on it
	dets []det
}

// observation is the first pass over the range.
type observation struct {
	w, h     int
	fps      float64
	rate     string
	frames   []seen
	mark     int       // the mark's frame
	markSig  signature // the signature of the mark's box (a box mark)
	markSeen bool
}

// observe decodes the range and runs the detectors on every frame.
func observe(ctx context.Context, cfg Config, job spec.SubjectJob) (*observation, error) {
	d, err := newDetector(cfg)
	if err != nil {
		return nil, err
	}
	defer d.close()
	d.autoRate = true
	ob := &observation{mark: job.Mark.Frame}
	markAt := job.Mark.At
	if markAt.IsZero() && job.Mark.Frame < 0 {
		markAt = job.From.Add(job.Mark.Offset)
	}
	ob.w, ob.h, ob.fps, ob.rate, err = decodeRange(ctx, job, func(n int, at time.Time, seg string, f *masking.Frame) error {
		if ob.mark < 0 && !at.Before(markAt) {
			ob.mark = n
		}
		fs := seen{at: at, seg: seg}
		y, _, _ := f.Planes()
		if zoneLuma(y, f.W, f.H, cfg.Zone) < cfg.MinLuma {
			fs.why = string(WhyDark)
		} else {
			j := job2(n, f)
			j.noHOG = n%SubjectHOGEvery != 0
			boxes, kinds, err := d.detectKinds(j)
			if err != nil {
				fs.why = string(WhyError) + ": " + err.Error()
			}
			for i, b := range boxes {
				if n == 0 && kinds[i] == Motion {
					// Background subtraction has no background yet: the
					// whole first frame "moves". Its people are the
					// tracks carried back from the next frames.
					continue
				}
				fs.dets = append(fs.dets, det{b: b, k: kinds[i], h: signatureOf(f, b)})
			}
		}
		if n == ob.mark && job.Mark.Box != nil {
			ob.markSig, ob.markSeen = signatureOf(f, markBox(job.Mark)), true
		}
		ob.frames = append(ob.frames, fs)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return ob, nil
}

// job2 is frame n's luma plane as a detector job (the detector copies
// nothing: it runs synchronously here).
func job2(n int, f *masking.Frame) job {
	y, _, _ := f.Planes()
	return job{n: uint64(n), w: f.W, h: f.H, y: y}
}

// markBox is a box mark as a Box.
func markBox(m spec.Mark) Box {
	b := m.Box
	return Box{b[0], b[1], b[0] + b[2], b[1] + b[3]}
}

// signature is a box's colour signature: histograms of Y (16 bins), U and
// V (8 each) over the box's middle (less background), normalised.
type signature [32]float32

func signatureOf(f *masking.Frame, b Box) signature {
	var s signature
	yp, up, vp := f.Planes()
	x0, x1 := int((b.X0+0.2*(b.X1-b.X0))*float64(f.W)), int((b.X1-0.2*(b.X1-b.X0))*float64(f.W))
	y0, y1 := int((b.Y0+0.1*(b.Y1-b.Y0))*float64(f.H)), int((b.Y1-0.1*(b.Y1-b.Y0))*float64(f.H))
	x0, y0 = max(0, x0)&^1, max(0, y0)&^1
	x1, y1 = min(f.W, x1), min(f.H, y1)
	var n float32
	for y := y0; y < y1; y += 2 {
		for x := x0; x < x1; x += 2 {
			c := (y/2)*(f.W/2) + x/2
			s[yp[y*f.W+x]>>4]++
			s[16+up[c]>>5]++
			s[24+vp[c]>>5]++
			n++
		}
	}
	if n > 0 {
		for i := range s {
			s[i] /= n
		}
	}
	return s
}

// similarity is the Bhattacharyya coefficient of two signatures, luma and
// chroma weighted equally: 1 is the same colours.
func (s signature) similarity(o signature) float64 {
	var l, c float64
	for i := range s {
		v := math.Sqrt(float64(s[i]) * float64(o[i]))
		if i < 16 {
			l += v
		} else {
			c += v
		}
	}
	return (l + c/2) / 2
}
