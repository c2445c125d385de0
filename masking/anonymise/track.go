package anonymise

import "math"

// Box is a rectangle in normalised coordinates (x right, y down, 0..1).
type Box struct{ X0, Y0, X1, Y1 float64 }

func (b Box) area() float64 { return max(0, b.X1-b.X0) * max(0, b.Y1-b.Y0) }

func (b Box) iou(o Box) float64 {
	in := Box{max(b.X0, o.X0), max(b.Y0, o.Y0), min(b.X1, o.X1), min(b.Y1, o.Y1)}.area()
	u := b.area() + o.area() - in
	if u <= 0 {
		return 0
	}
	return in / u
}

// grow enlarges b by share of its width and height on each side, clipped
// to the frame.
func (b Box) grow(share float64) Box {
	dx, dy := (b.X1-b.X0)*share, (b.Y1-b.Y0)*share
	return Box{max(0, b.X0-dx), max(0, b.Y0-dy), min(1, b.X1+dx), min(1, b.Y1+dy)}
}

func (b Box) shift(dx, dy float64) Box { return Box{b.X0 + dx, b.Y0 + dy, b.X1 + dx, b.Y1 + dy} }

func (b Box) center() (float64, float64) { return (b.X0 + b.X1) / 2, (b.Y0 + b.Y1) / 2 }

// track is one person (or plate) followed between detections.
type track struct {
	box      Box
	vx, vy   float64 // normalised units per frame
	seen     uint64  // frame of the last detection
	hits     int
	velKnown bool
}

// tracker is a greedy IoU tracker with constant-velocity prediction.
type tracker struct {
	tracks []*track
	hold   int
}

// maxHoldFactor bounds how much longer than hold a confirmed track lives.
const maxHoldFactor = 20

// minIoU: a detection continues a track when they overlap this much (or
// when its centre lies in the track's predicted box).
const minIoU = 0.15

// update matches the detections made on frame n to the tracks.
func (t *tracker) update(n uint64, dets []Box) {
	used := make([]bool, len(t.tracks))
	for _, d := range dets {
		best, bi := 0.0, -1
		cx, cy := d.center()
		for i, tr := range t.tracks {
			if used[i] {
				continue
			}
			p := tr.predict(n, t.hold)
			s := p.iou(d)
			if s < minIoU && cx >= p.X0 && cx <= p.X1 && cy >= p.Y0 && cy <= p.Y1 {
				s = minIoU
			}
			if s >= minIoU && s > best {
				best, bi = s, i
			}
		}
		if bi < 0 {
			t.tracks = append(t.tracks, &track{box: d, seen: n, hits: 1})
			used = append(used, true)
			continue
		}
		used[bi] = true
		tr := t.tracks[bi]
		if dt := float64(n - tr.seen); dt > 0 {
			ox, oy := tr.box.center()
			vx, vy := (cx-ox)/dt, (cy-oy)/dt
			if tr.velKnown {
				vx, vy = (vx+tr.vx)/2, (vy+tr.vy)/2
			}
			tr.vx, tr.vy, tr.velKnown = vx, vy, true
		}
		tr.box, tr.seen = d, n
		tr.hits++
	}
	keep := t.tracks[:0]
	for _, tr := range t.tracks {
		// A track confirmed by many detections is kept longer: a person
		// who stops fades into the motion detector's background.
		if n-tr.seen <= uint64(t.hold*min(tr.hits, maxHoldFactor)) {
			keep = append(keep, tr)
		}
	}
	t.tracks = keep
}

// predict is where the track is expected on frame n: carried at its
// velocity for at most hold frames (a track kept longer is a person who
// stopped).
func (tr *track) predict(n uint64, hold int) Box {
	dt := min(float64(n)-float64(tr.seen), float64(hold))
	// A speed beyond a frame's width in 10 frames is noise.
	vx := math.Max(-0.1, math.Min(0.1, tr.vx))
	vy := math.Max(-0.1, math.Min(0.1, tr.vy))
	return tr.box.shift(vx*dt, vy*dt)
}

// tracked is a track's box on a frame, before growing, and how many
// frames it has gone unseen.
type tracked struct {
	box Box
	age float64
}

// at returns every track's predicted box on frame n.
func (t *tracker) at(n uint64) []tracked {
	out := make([]tracked, 0, len(t.tracks))
	for _, tr := range t.tracks {
		out = append(out, tracked{tr.predict(n, t.hold), max(0, float64(n)-float64(tr.seen))})
	}
	return out
}

// grown is the box to mask: grown by margin, and more (5 % a frame, up
// to 50 %) the longer its track goes unseen.
func (k tracked) grown(margin float64) Box { return k.box.grow(margin + min(0.5, 0.05*k.age)) }

// boxes returns the boxes to mask on frame n, grown (tracked.grown).
func (t *tracker) boxes(n uint64, margin float64) []Box {
	out := make([]Box, 0, len(t.tracks))
	for _, k := range t.at(n) {
		if b := k.grown(margin); b.area() > 0 {
			out = append(out, b)
		}
	}
	return out
}
