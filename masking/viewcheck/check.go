package viewcheck

import (
	"math"

	"velo/masking"
)

// checkRef compares the prepared frame in ws with one reference. Every
// frame: the structural score at half size where the last deep check
// found the picture, and the per-frame tests (see suspect). The deep
// check runs on this same frame when deep is set, on an alarm, and on
// every frame until a deep check of this reference passes (at start, and
// after a mismatch: fail closed until the view is back). Shifts are in
// reference pixels.
func (v *Verifier) checkRef(rm *refModel, ws *workspace, deep bool) masking.ViewVerdict {
	sc, _ := rm.halfScore(ws, rm.lastT)
	alarm := sc < v.opts.MinScore || (rm.usual > 0 && sc < alarmScoreDrop*rm.usual) ||
		ws.half.sharpness(rm.runsH) < alarmSharpDrop*rm.sharpH || rm.suspect(ws, v.opts)
	if !deep && !alarm && rm.trusted {
		l := rm.last
		return masking.ViewVerdict{OK: true, ShiftX: l.ShiftX, ShiftY: l.ShiftY, Scale: l.Scale, Rotation: l.Rotation, Score: sc}
	}
	verdict, t := v.deepCheck(rm, ws, alarm || !rm.trusted)
	rm.trusted = verdict.OK
	if verdict.OK {
		rm.last, rm.lastT = verdict, t
		if rm.usual == 0 {
			rm.usual = verdict.Score
		} else {
			rm.usual = 0.8*rm.usual + 0.2*verdict.Score
		}
	}
	return verdict
}

// halfScore is the structural score at half size with t undone (as a
// whole-pixel shift when its rotation and scale move no pixel by half a
// pixel).
// With a distinctive part scored on its own (see distinctive), it is the
// lower of the score over every valid pixel and the score over that
// part, which is distinct (else distinct is sc).
func (rm *refModel) halfScore(ws *workspace, t similarity) (sc, distinct float64) {
	minN := rm.ref.Width / 2 * (rm.ref.Height / 2) / 5
	if !rm.split {
		all := rm.halfSums(ws, t, rm.validH, rm.runsH)
		sc = all.ncc(minN)
		return sc, sc
	}
	d := rm.halfSums(ws, t, rm.distinctH, rm.distinctRunsH)
	all := d.plus(rm.halfSums(ws, t, rm.periodicH, rm.periodicRunsH))
	distinct = d.ncc(rm.minDistinctN)
	return min(all.ncc(minN), distinct), distinct
}

// halfSums are the score's sums at half size over valid (runs: the same
// as runs) with t undone.
func (rm *refModel) halfSums(ws *workspace, t similarity, valid []bool, runs [][][2]int) nccSums {
	w, h := rm.ref.Width/2, rm.ref.Height/2
	t.tx, t.ty = t.tx/2, t.ty/2
	if math.Hypot(t.a, t.b)*math.Hypot(float64(w), float64(h))/2 < 0.5 {
		dx, dy := int(math.Round(t.tx)), int(math.Round(t.ty))
		if dx == 0 && dy == 0 {
			return runSums(rm.half, ws.half, runs, 0, 1)
		}
		return shiftSums(rm.half, ws.half, valid, dx, dy)
	}
	return scoreSums(rm.half, ws.half, valid, t)
}

// globalShift measures the frame's shift by phase correlation of the
// half-size zero-mean structures of the distinctive part (any shift up
// to a quarter of the picture).
func (rm *refModel) globalShift(ws *workspace) similarity {
	zeroMean(ws.PD, ws.st.G, rm.distinct)
	halve(ws.globalPC.input(), ws.PD, rm.ref.Width, rm.ref.Height)
	dx, dy, _ := ws.globalPC.displacement(rm.global)
	if math.IsNaN(dx) || math.IsNaN(dy) {
		return similarity{}
	}
	return similarity{tx: 2 * dx, ty: 2 * dy}
}

// deepCheck runs every check on the prepared frame: obstruction, defocus,
// then the tiles' transform (shift, scale, rotation) and the score with
// that transform undone. After an alarm the tiles are looked for around
// the global shift, else around the last transform found.
func (v *Verifier) deepCheck(rm *refModel, ws *workspace, alarm bool) (masking.ViewVerdict, similarity) {
	ws.full()
	zeroMean(ws.P, ws.st.G, rm.valid)
	guess := rm.lastT
	if alarm {
		guess = rm.globalShift(ws)
	}
	verdict := masking.ViewVerdict{ShiftX: guess.tx, ShiftY: guess.ty, Scale: guess.scale(), Rotation: guess.rotation()}
	ws.blocks, ws.count = ws.st.blockEnergy(rm.valid, blockSize, ws.blocks, ws.count)
	if flatFraction(rm.blocks, ws.blocks, flatEnergy) >= v.opts.Obstruction {
		verdict.Reason = ReasonObstruction
		return verdict, guess
	}
	if rm.sharp > 0 && ws.st.sharpness(rm.runs) < v.opts.DefocusRatio*rm.sharp {
		verdict.Reason = ReasonDefocus
		return verdict, guess
	}
	t := v.fitTransform(rm, ws, guess)
	sc, at := rm.halfScore(ws, t)
	if here, hereAt := rm.halfScore(ws, rm.lastT); hereAt > at {
		t, sc = rm.lastT, here // people in front of most tiles misled the fit
	}
	verdict.ShiftX, verdict.ShiftY = t.tx, t.ty
	verdict.Scale, verdict.Rotation = t.scale(), t.rotation()
	verdict.Score = sc
	switch {
	case verdict.Score < v.opts.MinScore || rm.mirroredScore(ws, rm.lastT, probeStep) > verdict.Score:
		verdict.Reason = ReasonScene // another place, or the picture flipped
	case math.Abs(verdict.Rotation) > rm.lim.rotation:
		verdict.Reason = ReasonRotation
	case math.Abs(verdict.Scale-1) > rm.lim.scale:
		verdict.Reason = ReasonScale
	case math.Hypot(verdict.ShiftX, verdict.ShiftY) > rm.lim.shift:
		verdict.Reason = ReasonShift
	default:
		verdict.OK = true
	}
	return verdict, t
}

// fitTransform measures the tiles around guess, and when the fit moved
// them by more than a pixel from there, again around the fit (so that a
// large rotation or zoom is measured where the tiles went). Too few tiles
// agreeing leaves guess.
func (v *Verifier) fitTransform(rm *refModel, ws *workspace, guess similarity) similarity {
	w, h := rm.ref.Width, rm.ref.Height
	t, ok := fitSimilarity(measureTiles(rm.tiles, ws.P, w, h, ws.tilePC, guess))
	if !ok {
		return guess
	}
	reach := math.Hypot(float64(w), float64(h)) / 2
	if math.Hypot(t.a-guess.a, t.b-guess.b)*reach+math.Hypot(t.tx-guess.tx, t.ty-guess.ty) < 1 {
		return t
	}
	if t2, ok := fitSimilarity(measureTiles(rm.tiles, ws.P, w, h, ws.tilePC, t)); ok {
		return t2
	}
	return t
}
