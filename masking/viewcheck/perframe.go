package viewcheck

import (
	"image"
	"math"
)

// The per-frame tests beside the score and the sharpness. Each raises the
// alarm, so that the deep check decides on that same frame: a tampered
// picture must fail its first frame, not the next scheduled deep check.
//
//   - moved: the frame matches the reference better one half-size pixel
//     away from where the last deep check found it than there (a bump
//     just over the limit can keep a fair score on coarse textures);
//   - flipped: the frame matches a mirror of the reference better than
//     the reference (a roughly symmetric scene keeps a fair score when
//     flipped);
//   - obstructed: many blocks textured in the reference went flat (an
//     object over part of the lens leaves the rest matching well).

const (
	// probeStep: the motion and flip tests score every probeStep-th row
	// at half size (the differences they look for are large).
	probeStep = 4
	// alarmObstruction: the fraction of Options.Obstruction of flat
	// blocks at half size that raises the alarm.
	alarmObstruction = 0.8
)

// neighbours are the shifts, in half-size pixels, the motion test tries
// around the last known position.
func neighbours() [4]image.Point { return [4]image.Point{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} }

// probe is the set of half-size reference pixels valid at a whole-pixel
// shift and at its four neighbours, where the motion test scores.
type probe struct {
	at   image.Point
	runs [][][2]int
}

// suspect runs the per-frame tests on the prepared frame.
func (rm *refModel) suspect(ws *workspace, o Options) bool {
	here, moved := rm.moved(ws)
	if moved {
		return true
	}
	if rm.mirroredScore(ws, rm.lastT, probeStep) > here {
		return true
	}
	ws.blocksH, ws.count = ws.half.runBlockEnergy(rm.runsH, blockSize/2, ws.blocksH, ws.count)
	return flatFraction(rm.blocksH, ws.blocksH, flatEnergy) >= alarmObstruction*o.Obstruction
}

// moved scores the frame where the last deep check found the picture (in
// whole half-size pixels) and at the four neighbours: moved when a
// neighbour matches better. here is the score at that place.
func (rm *refModel) moved(ws *workspace) (here float64, moved bool) {
	at := image.Pt(int(math.Round(rm.lastT.tx/2)), int(math.Round(rm.lastT.ty/2)))
	if rm.probe.runs == nil || rm.probe.at != at {
		rm.probe = probe{at: at, runs: probeRuns(rm.validH, rm.ref.Width/2, rm.ref.Height/2, at)}
	}
	w := rm.ref.Width / 2
	base := at.Y*w + at.X
	here = runScore(rm.half, ws.half, rm.probe.runs, base, probeStep)
	for _, n := range neighbours() {
		if runScore(rm.half, ws.half, rm.probe.runs, base+n.Y*w+n.X, probeStep) > here {
			return here, true
		}
	}
	return here, false
}

// probeRuns are the runs of the w×h pixels valid in valid whose pixel at
// shift at, and its four neighbours, are valid too.
func probeRuns(valid []bool, w, h int, at image.Point) [][][2]int {
	ok := make([]bool, len(valid))
	inside := func(x, y int) bool { return x >= 0 && y >= 0 && x < w && y < h && valid[y*w+x] }
	for y := range h {
		for x := range w {
			if !valid[y*w+x] {
				continue
			}
			qx, qy := x+at.X, y+at.Y
			ok[y*w+x] = inside(qx, qy)
			for _, n := range neighbours() {
				ok[y*w+x] = ok[y*w+x] && inside(qx+n.X, qy+n.Y)
			}
		}
	}
	return validRuns(ok, w, h)
}
