package anonymise

import (
	"context"
	"fmt"
	"time"

	"velo/masking"
	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// Following the subject: from the mark, forwards and backwards, each
// frame's subject is the person detection nearest where the subject is
// expected (carried at its measured speed) whose colours match the
// mark's. It is confident only when one person answers: no match, a
// detection of another size (two people merged into one blob) or two
// people who both match make the frame uncertain.
const (
	subjMinSim    = 0.80 // colour similarity to the mark, at least
	subjMinIoU    = 0.20 // overlap with the expected box, at least (or its centre inside)
	subjAmbiguity = 0.08 // a second person scoring this close makes it uncertain
	subjMinSize   = 0.25 // a detection's area against the subject's, at least (a part of them)
	subjMaxSize   = 2.0  // and at most
)

// plannedFrame is what the second pass does to one frame.
type plannedFrame struct {
	state   string // spec.SubjectTracked, SubjectUncertain, SubjectWholeFrame
	why     string
	subject *Box
	masks   []Box
	plates  int
}

type plan struct {
	frames []plannedFrame
	mark   int
}

// makePlan follows the subject and decides each frame's masks.
func makePlan(cfg Config, m spec.Mark, ob *observation) (*plan, error) {
	n := len(ob.frames)
	if ob.mark < 0 || ob.mark >= n {
		return nil, fmt.Errorf("--mark %s: the range has %d frames (0..%d)", m, n, n-1)
	}
	mark, seed, sig, err := seedSubject(m, ob)
	if err != nil {
		return nil, err
	}
	subj := make([]*Box, n)
	subj[mark] = &seed
	follow(ob, mark, +1, seed, sig, subj)
	follow(ob, mark, -1, seed, sig, subj)
	people, plates := othersTracked(cfg, ob)
	p := &plan{frames: make([]plannedFrame, n), mark: mark}
	for i, fs := range ob.frames {
		pf := &p.frames[i]
		switch {
		case fs.why != "":
			pf.state, pf.why = spec.SubjectWholeFrame, fs.why
			pf.masks = []Box{{0, 0, 1, 1}}
			continue
		case subj[i] == nil:
			pf.state, pf.why = spec.SubjectUncertain, "the subject's track is not confident"
		default:
			pf.state, pf.subject = spec.SubjectTracked, subj[i]
		}
		for _, k := range people[i] {
			if pf.subject != nil && isSubject(k.box, *pf.subject) {
				continue
			}
			pf.masks = append(pf.masks, k.grown(cfg.Margin))
		}
		for _, k := range plates[i] {
			pf.masks = append(pf.masks, k.grown(cfg.Margin))
			pf.plates++
		}
	}
	return p, nil
}

// seedSubject finds the subject at the mark: for a box, the person
// detection that best overlaps it on the mark's frame or the 3 frames
// either side (seedFromBox); for a point, the smallest person detection
// around it on the same frames.
func seedSubject(m spec.Mark, ob *observation) (int, Box, signature, error) {
	if m.Box != nil {
		return seedFromBox(markBox(m), ob)
	}
	x, y := m.Point[0], m.Point[1]
	for _, off := range []int{0, 1, -1, 2, -2, 3, -3} {
		f := ob.mark + off
		if f < 0 || f >= len(ob.frames) {
			continue
		}
		var pick *det
		for i, d := range ob.frames[f].dets {
			if d.k != Plate && x >= d.b.X0 && x <= d.b.X1 && y >= d.b.Y0 && y <= d.b.Y1 && (pick == nil || d.b.area() < pick.b.area()) {
				pick = &ob.frames[f].dets[i]
			}
		}
		if pick != nil {
			return f, pick.b, pick.h, nil
		}
	}
	return 0, Box{}, signature{}, fmt.Errorf("--mark %s: no person detected at that point on frame %d or the 3 frames either side: mark a box around them instead", m, ob.mark)
}

// seedFromBox: the detection overlapping the operator's box b best (IoU
// ≥ 0.3) on the mark's frame or the nearest of the 3 frames either side
// (background subtraction finds no one on a range's first frame). Refused
// when it matches no one, or holds another person too: the box is never
// taken as the subject itself, which would exempt everyone inside it —
// unless nothing is trusted on the mark's frame (masked whole anyway).
func seedFromBox(b Box, ob *observation) (int, Box, signature, error) {
	for _, off := range []int{0, 1, -1, 2, -2, 3, -3} {
		f := ob.mark + off
		if f < 0 || f >= len(ob.frames) {
			continue
		}
		dets := ob.frames[f].dets
		best, bi := 0.3, -1
		for i, d := range dets {
			if s := d.b.iou(b); d.k != Plate && s >= best {
				best, bi = s, i
			}
		}
		if bi < 0 {
			continue
		}
		for i, d := range dets {
			in := Box{max(d.b.X0, b.X0), max(d.b.Y0, b.Y0), min(d.b.X1, b.X1), min(d.b.Y1, b.Y1)}.area()
			if i != bi && d.k != Plate && !isSubject(d.b, dets[bi].b) && in >= 0.5*d.b.area() {
				return 0, Box{}, signature{}, fmt.Errorf("the marked box holds more than one person detected on frame %d: mark the requester alone", f)
			}
		}
		sig := dets[bi].h
		if f == ob.mark {
			sig = ob.markSig
		}
		return f, dets[bi].b, sig, nil
	}
	if ob.frames[ob.mark].why != "" {
		return ob.mark, b, ob.markSig, nil
	}
	return 0, Box{}, signature{}, fmt.Errorf("the marked box matches no person detected on frame %d or the 3 either side: mark the requester's own outline, or a point on them", ob.mark)
}

// follow tracks the subject from the mark in direction dir (+1, -1),
// setting subj[f] on the frames where it is confident. The subject's size
// is the mark's, updated slowly by detections of about that size; its
// speed is measured in the direction of travel from those only. A
// smaller detection (the part of a slow walker that moved) places the
// subject without changing either.
func follow(ob *observation, mark, dir int, seed Box, sig signature, subj []*Box) {
	cur, last := seed, mark
	rw, rh := seed.X1-seed.X0, seed.Y1-seed.Y0
	var vx, vy float64
	for f := mark + dir; f >= 0 && f < len(ob.frames); f += dir {
		gap := float64((f - last) * dir)
		exp := cur.shift(vx*gap, vy*gap)
		b, ok := pickSubject(ob.frames[f].dets, exp, exp.grow(min(0.5, 0.1+0.05*gap)), rw*rh, sig)
		if !ok {
			continue
		}
		if r := b.area() / (rw * rh); r < 0.6 || r > 1.6 {
			// A part of the subject: their usual box, around it.
			cx, _ := b.center()
			_, ey := exp.center()
			b = union(b, Box{cx - rw/2, ey - rh/2, cx + rw/2, ey + rh/2})
		} else {
			ncx, ncy := b.center()
			ocx, ocy := cur.center()
			vx, vy = (vx+(ncx-ocx)/gap)/2, (vy+(ncy-ocy)/gap)/2
			vx, vy = max(-0.05, min(0.05, vx)), max(-0.05, min(0.05, vy))
			rw, rh = 0.7*rw+0.3*(b.X1-b.X0), 0.7*rh+0.3*(b.Y1-b.Y0)
		}
		cur, last = b, f
		subj[f] = &b
	}
}

func union(a, b Box) Box {
	return Box{min(a.X0, b.X0), min(a.Y0, b.Y0), max(a.X1, b.X1), max(a.Y1, b.Y1)}
}

// pickSubject chooses the subject among a frame's detections; false when
// none matches or when another person (a box apart from the best) scores
// nearly as well.
func pickSubject(dets []det, exp, search Box, size float64, sig signature) (Box, bool) {
	best, bi := -1.0, -1
	scores := make([]float64, len(dets))
	for i, d := range dets {
		s, ok := subjectScore(d, exp, search, size, sig)
		scores[i] = -1
		if ok {
			scores[i] = s
			if s > best {
				best, bi = s, i
			}
		}
	}
	if bi < 0 {
		return Box{}, false
	}
	for i, s := range scores {
		if s >= 0 && i != bi && !samePerson(dets[i].b, dets[bi].b) && s >= best-subjAmbiguity {
			return Box{}, false
		}
	}
	return dets[bi].b, true
}

// samePerson: two detectors' boxes of one person (they overlap, or one
// lies mostly inside the other), not two people side by side.
func samePerson(a, b Box) bool {
	in := Box{max(a.X0, b.X0), max(a.Y0, b.Y0), min(a.X1, b.X1), min(a.Y1, b.Y1)}.area()
	return a.iou(b) >= 0.3 || in >= 0.6*min(a.area(), b.area())
}

// subjectScore rates detection d as the subject expected at exp: its
// overlap with exp and its colours' likeness to the mark's; ok is false
// when it cannot be the subject.
func subjectScore(d det, exp, search Box, size float64, sig signature) (float64, bool) {
	if d.k == Plate {
		return 0, false
	}
	cx, cy := d.b.center()
	iou := d.b.iou(exp)
	if iou < subjMinIoU && (cx < search.X0 || cx > search.X1 || cy < search.Y0 || cy > search.Y1) {
		return 0, false
	}
	if r := d.b.area() / max(size, 1e-9); r < subjMinSize || r > subjMaxSize {
		return 0, false
	}
	sim := d.h.similarity(sig)
	if sim < subjMinSim {
		return 0, false
	}
	return iou/2 + sim/2, true
}

// isSubject: a tracked box that is the subject (another detector's box
// of them), or a small box in the top of theirs (their face) — not a
// whole person standing inside or in front of the subject's box, such
// as a child beside them or a distant walker behind.
func isSubject(b, s Box) bool {
	if b.iou(s) >= 0.5 {
		return true
	}
	in := Box{max(b.X0, s.X0), max(b.Y0, s.Y0), min(b.X1, s.X1), min(b.Y1, s.Y1)}.area()
	face := b.area() <= 0.15*s.area() && b.Y1 <= s.Y0+0.45*(s.Y1-s.Y0)
	return face && in >= 0.8*b.area()
}

// othersTracked runs the IoU tracker over the people's and the plates'
// detections forwards and backwards (a person who stood still before
// walking is tracked back to the start), and returns each frame's
// tracked boxes of both passes.
func othersTracked(cfg Config, ob *observation) (people, plates [][]tracked) {
	n := len(ob.frames)
	people, plates = make([][]tracked, n), make([][]tracked, n)
	for _, dir := range []int{+1, -1} {
		tp, tq := tracker{hold: cfg.Hold}, tracker{hold: cfg.Hold}
		for k := range n {
			i := k
			if dir < 0 {
				i = n - 1 - k
			}
			var pd, qd []Box
			for _, d := range ob.frames[i].dets {
				if d.k == Plate {
					qd = append(qd, d.b)
				} else {
					pd = append(pd, d.b)
				}
			}
			tp.update(uint64(k), pd)
			tq.update(uint64(k), qd)
			people[i] = append(people[i], tp.at(uint64(k))...)
			plates[i] = append(plates[i], tq.at(uint64(k))...)
		}
	}
	return people, plates
}

// render decodes the range again, masks each frame as planned and
// encodes the MP4 at path.
func render(ctx context.Context, cfg Config, job spec.SubjectJob, ob *observation, pl *plan, path string) error {
	enc, err := newEncoder(ctx, path, ob.w, ob.h, ob.rate)
	if err != nil {
		return err
	}
	_, _, _, _, err = decodeRange(ctx, job, func(n int, _ time.Time, _ string, f *masking.Frame) error {
		if n >= len(pl.frames) {
			return fmt.Errorf("frame %d decoded the second time, %d the first", n+1, len(pl.frames))
		}
		if err := maskFrame(cfg, f, pl.frames[n].masks); err != nil {
			return err
		}
		return enc.write(f)
	})
	if err != nil {
		enc.in.Close()
		_ = enc.cmd.Wait()
		return err
	}
	return enc.close()
}

// maskFrame masks boxes in f with the stage's style.
func maskFrame(cfg Config, f *masking.Frame, boxes []Box) error {
	if len(boxes) == 0 {
		return nil
	}
	masks := make([]maskspec.Mask, 0, len(boxes))
	for i, b := range boxes {
		masks = append(masks, cfg.Mask(fmt.Sprintf("box %d", i+1), []maskspec.Point{{X: b.X0, Y: b.Y0}, {X: b.X1, Y: b.Y0}, {X: b.X1, Y: b.Y1}, {X: b.X0, Y: b.Y1}}))
	}
	r, err := masking.Rasterize(&maskspec.MaskSet{Camera: cfg.Camera, Preset: "subject", Masks: masks}, f.W, f.H)
	if err != nil {
		return err
	}
	return r.Apply(f)
}

func xywh(b Box) [4]float64 { return [4]float64{b.X0, b.Y0, b.X1 - b.X0, b.Y1 - b.Y0} }

// report is the plan as the sidecar lists it.
func (pl *plan) report(cfg Config, m spec.Mark, ob *observation) spec.SubjectReport {
	r := spec.SubjectReport{Width: ob.w, Height: ob.h, FPS: ob.fps, Frames: len(pl.frames), Video: "H.264, yuv420p, MP4 (faststart)",
		Mark: m, MarkFrame: pl.mark, Detectors: cfg.Detectors, DetectWidth: cfg.DetectWidth, Margin: cfg.Margin,
		Style: string(cfg.Style), Block: cfg.Block, Strength: cfg.Strength, MinLuma: cfg.MinLuma,
		Method: "detectors on every frame; the subject followed from the mark both ways (overlap with where they are expected, colours like the mark's); " +
			"every other tracked person and every plate masked, grown by the margin; an uncertain frame has every box masked, " +
			"a frame the detectors cannot be trusted on is masked whole",
		Uncertain: []int{}, WholeFrame: []int{}}
	for i, pf := range pl.frames {
		sf := spec.SubjectFrame{N: i, Time: ob.frames[i].at, Segment: ob.frames[i].seg, State: pf.state, Why: pf.why, Plates: pf.plates}
		if pf.subject != nil {
			b := xywh(*pf.subject)
			sf.Subject = &b
		}
		for _, b := range pf.masks {
			sf.Masked = append(sf.Masked, xywh(b))
		}
		switch pf.state {
		case spec.SubjectTracked:
			r.Tracked++
		case spec.SubjectUncertain:
			r.Uncertain = append(r.Uncertain, i)
		default:
			r.WholeFrame = append(r.WholeFrame, i)
		}
		r.PerFrame = append(r.PerFrame, sf)
	}
	return r
}
