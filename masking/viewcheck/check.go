package viewcheck

import (
	"math"

	"velo/masking"
)

// checkRef compares the prepared frame in ws with one reference: the
// per-frame shift and score, then the deep check when deep is set or they
// raise an alarm. Shifts are in reference pixels.
func (v *Verifier) checkRef(rm *refModel, ws *workspace, deep bool) masking.ViewVerdict {
	w, h := rm.ref.Width, rm.ref.Height
	zeroMean(ws.P.d, ws.st.G, rm.valid)
	dx, dy, _ := displacement(rm.P.m, ws.P.m, ws.window)
	if math.IsNaN(dx) || math.IsNaN(dy) {
		dx, dy = 0, 0
	}
	sc := shiftScore(rm.G, ws.st.G, rm.valid, w, h, int(math.Round(dx)), int(math.Round(dy)))
	verdict := masking.ViewVerdict{OK: true, ShiftX: dx, ShiftY: dy, Scale: rm.lastScale, Rotation: rm.lastRotation, Score: sc}
	alarm := math.Hypot(dx, dy) > alarmShiftFraction*rm.lim.shift || sc < v.opts.MinScore ||
		(rm.usual > 0 && sc < alarmScoreDrop*rm.usual)
	if !deep && !alarm {
		return verdict
	}
	verdict = v.deepCheck(rm, ws, similarity{tx: dx, ty: dy}, sc)
	if verdict.OK {
		rm.lastScale, rm.lastRotation = verdict.Scale, verdict.Rotation
		if rm.usual == 0 {
			rm.usual = sc
		} else {
			rm.usual = 0.8*rm.usual + 0.2*sc
		}
	}
	return verdict
}

// deepCheck runs every check on the prepared frame: obstruction, defocus,
// then the tiles' transform (shift, scale, rotation) and the score with
// that transform undone.
func (v *Verifier) deepCheck(rm *refModel, ws *workspace, global similarity, fastScore float64) masking.ViewVerdict {
	w, h := rm.ref.Width, rm.ref.Height
	verdict := masking.ViewVerdict{ShiftX: global.tx, ShiftY: global.ty, Scale: 1, Score: fastScore}
	ws.blocks = ws.st.blockEnergy(rm.valid, ws.blocks)
	if flatFraction(rm.blocks, ws.blocks, flatEnergy) >= v.opts.Obstruction {
		verdict.Reason = ReasonObstruction
		return verdict
	}
	if rm.sharp > 0 && ws.st.sharpness(rm.valid) < v.opts.DefocusRatio*rm.sharp {
		verdict.Reason = ReasonDefocus
		return verdict
	}
	t, fitted := v.fitTransform(rm, ws, global)
	if fitted {
		verdict.ShiftX, verdict.ShiftY = t.tx, t.ty
		verdict.Scale, verdict.Rotation = t.scale(), t.rotation()
		verdict.Score = score(rm.G, ws.st.G, rm.valid, w, h, t)
	}
	switch {
	case verdict.Score < v.opts.MinScore:
		verdict.Reason = ReasonScene
	case math.Abs(verdict.Rotation) > rm.lim.rotation:
		verdict.Reason = ReasonRotation
	case math.Abs(verdict.Scale-1) > rm.lim.scale:
		verdict.Reason = ReasonScale
	case math.Hypot(verdict.ShiftX, verdict.ShiftY) > rm.lim.shift:
		verdict.Reason = ReasonShift
	default:
		verdict.OK = true
	}
	return verdict
}

// fitTransform measures the tiles twice: around the global shift, then
// around the first fit (so that a large rotation or zoom is measured
// where the tiles really went).
func (v *Verifier) fitTransform(rm *refModel, ws *workspace, global similarity) (similarity, bool) {
	w, h := rm.ref.Width, rm.ref.Height
	t, ok := fitSimilarity(measureTiles(rm.tiles, ws.P.d, w, h, ws.tile, ws.tileW, global))
	if !ok {
		t = global
	}
	t2, ok2 := fitSimilarity(measureTiles(rm.tiles, ws.P.d, w, h, ws.tile, ws.tileW, t))
	if ok2 {
		return t2, true
	}
	return t, ok
}
