package camsim_test

import (
	"bytes"
	"math"
	"testing"
	"time"

	"velo/onvif/camsim"
)

const rw, rh = 640, 360

func day(t time.Duration) camsim.SceneState { return camsim.DayCycle(t, 0) }

func render(scene string, st camsim.SceneState) []byte {
	return camsim.RenderI420(scene, rw, rh, camsim.Position{}, st)
}

func regionPx(scene string) (x0, y0, x1, y1 int) {
	b := camsim.Regions(camsim.CameraConfig{Scene: scene, Width: rw, Height: rh}, camsim.Position{})[camsim.RegionBadgeReader]
	return int(math.Round(b.X0 * rw)), int(math.Round(b.Y0 * rh)), int(math.Round(b.X1 * rw)), int(math.Round(b.Y1 * rh))
}

// A frame is a function of its arguments: the same state gives the same
// bytes, and a still scene (no traffic, constant daylight) is the same at
// any time, which tests comparing frames taken at different times rely on.
func TestRenderI420IsDeterministic(t *testing.T) {
	for _, scene := range []string{"ptz", "badge", "street"} {
		busy := camsim.DayCycle(97*time.Second, 10*time.Minute)
		busy.Traffic = true
		busy.Tamper = camsim.Tamper{ShiftX: 0.03, RotateDeg: 2, Blur: 2}
		a, b := render(scene, busy), render(scene, busy)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renders of one state differ", scene)
		}
		if len(a) != rw*rh*3/2 {
			t.Errorf("%s: %d bytes, want a full I420 frame of %d", scene, len(a), rw*rh*3/2)
		}
		if bytes.Equal(render(scene, day(0)), render(scene, day(time.Hour))) != true {
			t.Errorf("%s: the still scene changes with time", scene)
		}
		later := busy
		later.T += time.Second
		if scene != "badge" && bytes.Equal(a, render(scene, later)) {
			t.Errorf("%s: nothing moves in a second of traffic", scene)
		}
	}
}

// A Renderer reused across frames (its background kept while the view
// stays) gives exactly RenderI420's frames, whatever changes between calls.
func TestRendererMatchesRenderI420(t *testing.T) {
	night := camsim.DayCycle(6*time.Minute, 10*time.Minute)
	night.Traffic = true
	steps := []struct {
		scene string
		w, h  int
		p     camsim.Position
		st    camsim.SceneState
	}{
		{"street", rw, rh, camsim.Position{}, day(0)},
		{"street", rw, rh, camsim.Position{}, day(time.Second)},
		{"street", rw, rh, camsim.Position{}, night},
		{"street", rw, rh, camsim.Position{}, camsim.SceneState{Light: 1, Tamper: camsim.Tamper{RotateDeg: 3}}},
		{"street", rw, rh, camsim.Position{}, camsim.SceneState{Light: 1, Tamper: camsim.Tamper{RotateDeg: 3, ShiftX: 0.1}}},
		{"street", rw, rh, camsim.Position{}, day(0)},
		{"ptz", rw, rh, camsim.Position{Pan: 0.2}, day(0)},
		{"ptz", rw, rh, camsim.Position{Pan: 0.25}, day(0)},
		{"ptz", 320, 180, camsim.Position{Pan: 0.25}, day(0)},
		{"badge", 320, 180, camsim.Position{}, day(0)},
	}
	var r camsim.Renderer
	for i, s := range steps {
		f := camsim.NewFrame(s.w, s.h)
		r.Render(f, s.scene, s.p, s.st)
		if !bytes.Equal(f.Data, camsim.RenderI420(s.scene, s.w, s.h, s.p, s.st)) {
			t.Errorf("step %d (%s %dx%d %+v): the reused renderer's frame differs", i, s.scene, s.w, s.h, s.p)
		}
	}
}

// The marker patterns stay exactly where Regions says (masking tests prove
// masks hide them): every pixel there is one of the two marker lumas, and
// the texture around is not.
func TestMarkersStayWhereRegionsSays(t *testing.T) {
	for _, scene := range []string{"ptz", "badge"} {
		y := render(scene, day(0))
		x0, y0, x1, y1 := regionPx(scene)
		for yy := y0; yy < y1; yy++ {
			for xx := x0; xx < x1; xx++ {
				if v := y[yy*rw+xx]; v != 105 && v != 145 {
					t.Fatalf("%s: pixel (%d,%d) in the badge reader is %d, not the marker", scene, xx, yy, v)
				}
			}
		}
		if v := y[(y0+y1)/2*rw+x1+2]; v == 105 || v == 145 {
			t.Errorf("%s: the marker runs past the region's right edge", scene)
		}
	}
}

// Pixel verification needs structure everywhere: in the fixed views, few
// 16×16 blocks are flat.
func TestFixedViewsHaveTexture(t *testing.T) {
	for _, scene := range []string{"badge", "street"} {
		y := render(scene, day(0))
		flat, n := 0, 0
		for by := 0; by+16 <= rh; by += 16 {
			for bx := 0; bx+16 <= rw; bx += 16 {
				if blockStddev(y, bx, by, 16) < 1 {
					flat++
				}
				n++
			}
		}
		t.Logf("%s: %d of %d blocks flat", scene, flat, n)
		if f := float64(flat) / float64(n); f > 0.05 {
			t.Errorf("%s: %.0f %% of blocks are flat", scene, 100*f)
		}
	}
}

// Shift moves the picture by the asked fraction of its width and height.
func TestTamperShiftMovesThePicture(t *testing.T) {
	base := render("badge", day(0))
	for _, tc := range []struct{ dx, dy float64 }{{0.1, 0}, {-0.05, 0}, {0, 0.1}} {
		st := day(0)
		st.Tamper = camsim.Tamper{ShiftX: tc.dx, ShiftY: tc.dy}
		got := render("badge", st)
		gx, gy := estimateShift(base, got, rw, rh, 80)
		if wx, wy := int(math.Round(tc.dx*rw)), int(math.Round(tc.dy*rh)); abs(gx-wx) > 1 || abs(gy-wy) > 1 {
			t.Errorf("shift %+v moved the picture by (%d,%d) px, want (%d,%d)", tc, gx, gy, wx, wy)
		}
	}
}

// Zoom scales the badge reader about the frame centre.
func TestTamperZoomScalesThePicture(t *testing.T) {
	x0, y0, x1, y1 := regionPx("badge")
	row := (y0 + y1) / 2
	for _, z := range []float64{0.5, 1.5} {
		st := day(0)
		st.Tamper = camsim.Tamper{Zoom: z}
		got := render("badge", st)
		yy := rh/2 + int(float64(row-rh/2)*z)
		w := markerRun(got[yy*rw:(yy+1)*rw], rw/2+int(float64((x0+x1)/2-rw/2)*z))
		if want := float64(x1-x0) * z; math.Abs(float64(w)-want) > 3 {
			t.Errorf("zoom %g: badge reader %d px wide, want %.0f", z, w, want)
		}
	}
}

// Rotation turns the street's top edge by the asked angle, counter-clockwise.
func TestTamperRotateTurnsThePicture(t *testing.T) {
	for _, deg := range []float64{4, -10} {
		st := day(0)
		st.Tamper = camsim.Tamper{RotateDeg: deg}
		y := render("ptz", st)
		xa, xb := rw/4, 3*rw/4
		ya, yb := streetTop(y, xa), streetTop(y, xb)
		got := math.Atan2(float64(ya-yb), float64(xb-xa)) * 180 / math.Pi
		if math.Abs(got-deg) > 0.5 {
			t.Errorf("rotate %g: street edge at %.2f°", deg, got)
		}
	}
}

// Flip mirrors the whole picture; the badge reader lands at the mirrored
// place.
func TestTamperFlipMirrors(t *testing.T) {
	base := render("ptz", day(0))
	st := day(0)
	st.Tamper = camsim.Tamper{FlipH: true}
	got := render("ptz", st)
	for y := 0; y < rh; y++ {
		for x := 0; x < rw; x++ {
			if got[y*rw+x] != base[y*rw+rw-1-x] {
				t.Fatalf("flip h: pixel (%d,%d) is not the mirror of the original", x, y)
			}
		}
	}
	x0, y0, x1, y1 := regionPx("ptz")
	if w := markerRun(got[(y0+y1)/2*rw:], rw-(x0+x1)/2); abs(w-(x1-x0)) > 1 {
		t.Errorf("flipped badge reader %d px wide at the mirrored place, want %d", w, x1-x0)
	}
	st.Tamper = camsim.Tamper{FlipV: true}
	got = render("ptz", st)
	if !bytes.Equal(got[:rw], base[(rh-1)*rw:rh*rw]) {
		t.Error("flip v: the top row is not the original bottom row")
	}
}

// Cover hides the asked fraction of the frame behind a dark uniform
// object; 1 is a covered lens: a uniform frame.
func TestTamperCover(t *testing.T) {
	st := day(0)
	st.Tamper = camsim.Tamper{Cover: 1}
	f := render("street", st)
	if sd := blockStddevRect(f, 0, 0, rw, rh); sd != 0 {
		t.Errorf("covered lens: luma stddev %.2f, want a uniform frame", sd)
	}
	for _, c := range f[rw*rh:] {
		if c != 128 {
			t.Fatal("covered lens: colour left")
		}
	}
	st.Tamper = camsim.Tamper{Cover: 0.5}
	f = render("street", st)
	if l, r := blockStddevRect(f, 0, 0, rw/2, rh), blockStddevRect(f, rw/2, 0, rw, rh); l != 0 || r < 10 {
		t.Errorf("half covered: stddev left %.1f (want 0), right %.1f (want scene)", l, r)
	}
}

// Defocus removes detail (gradient energy) but not brightness.
func TestTamperDefocusBlurs(t *testing.T) {
	base := render("badge", day(0))
	st := day(0)
	st.Tamper = camsim.Tamper{Blur: 4}
	got := render("badge", st)
	gb, gg := gradientEnergy(base), gradientEnergy(got)
	if gg > 0.5*gb {
		t.Errorf("blur 4: gradient energy %.0f → %.0f, want at most half", gb, gg)
	}
	if mb, mg := mean(base[:rw*rh]), mean(got[:rw*rh]); math.Abs(mb-mg) > 1 {
		t.Errorf("blur changed the mean luma %.1f → %.1f", mb, mg)
	}
}

// The compressed day goes from colour daylight through an IR night (no
// colour: U = V = 128, headlights on) and back to daylight.
func TestDayCyclePassesThroughNight(t *testing.T) {
	const period = 10 * time.Minute
	var nights, headlit int
	var sawDusk bool
	for i := 0; i <= 100; i++ {
		st := camsim.DayCycle(period*time.Duration(i)/100, period)
		st.Traffic = true
		f := render("street", st)
		grey := chromaAllGrey(f)
		if grey != st.IR {
			t.Fatalf("at %d %%: IR %v but monochrome picture %v", i, st.IR, grey)
		}
		if st.IR {
			nights++
			if bytes.IndexByte(f[:rw*rh], 235) >= 0 {
				headlit++
			}
		}
		sawDusk = sawDusk || (st.Light > 0 && st.Light < 1 && !st.IR)
		if (i == 0 || i == 100) && (st.Light != 1 || st.IR) {
			t.Errorf("at %d %%: %+v, want daylight", i, st)
		}
	}
	if nights == 0 || !sawDusk {
		t.Errorf("%d night samples, dusk %v: the day skipped a phase", nights, sawDusk)
	}
	// Cars (with their lights) are in view most of the time, not always.
	if headlit*2 < nights {
		t.Errorf("headlights in %d of %d night frames", headlit, nights)
	}
	t.Logf("%d night frames of 101, %d with headlights in view", nights, headlit)
	if st := camsim.DayCycle(time.Hour, 0); st.Light != 1 || st.IR || st.Shadows {
		t.Errorf("no day cycle: %+v, want constant daylight", st)
	}
}

// --- measuring helpers ------------------------------------------------------

// estimateShift finds the (dx, dy) within ±max that best maps a onto b
// (b[y+dy][x+dx] ≈ a[y][x]), by the mean absolute luma difference.
func estimateShift(a, b []byte, w, h, maxD int) (int, int) {
	best, bx, by := math.Inf(1), 0, 0
	for dy := -maxD / 2; dy <= maxD/2; dy++ {
		for dx := -maxD; dx <= maxD; dx++ {
			var sum, n float64
			for y := maxD; y < h-maxD; y += 3 {
				for x := maxD; x < w-maxD; x += 3 {
					sum += math.Abs(float64(a[y*w+x]) - float64(b[(y+dy)*w+x+dx]))
					n++
				}
			}
			if sum/n < best {
				best, bx, by = sum/n, dx, dy
			}
		}
	}
	return bx, by
}

// markerRun is the length of the run of badge-marker pixels through x.
func markerRun(row []byte, x int) int {
	isMarker := func(i int) bool { return i >= 0 && i < rw && (row[i] == 105 || row[i] == 145) }
	if !isMarker(x) {
		return 0
	}
	l, r := x, x
	for isMarker(l - 1) {
		l--
	}
	for isMarker(r + 1) {
		r++
	}
	return r - l + 1
}

// streetTop is the first row, going down column x from the middle, where
// the street's marker starts.
func streetTop(y []byte, x int) int {
	isStreet := func(v byte) bool { return v == 210 || v == 41 }
	for r := rh / 2; r < rh-3; r++ {
		if isStreet(y[r*rw+x]) && isStreet(y[(r+2)*rw+x]) {
			return r
		}
	}
	return -1
}

func chromaAllGrey(f []byte) bool {
	for _, c := range f[rw*rh:] {
		if c != 128 {
			return false
		}
	}
	return true
}

func blockStddev(y []byte, x0, y0, n int) float64 { return blockStddevRect(y, x0, y0, x0+n, y0+n) }

func blockStddevRect(y []byte, x0, y0, x1, y1 int) float64 {
	var s, sq, n float64
	for yy := y0; yy < y1; yy++ {
		for xx := x0; xx < x1; xx++ {
			v := float64(y[yy*rw+xx])
			s, sq, n = s+v, sq+v*v, n+1
		}
	}
	m := s / n
	return math.Sqrt(math.Max(sq/n-m*m, 0))
}

func gradientEnergy(y []byte) float64 {
	var e float64
	for yy := 0; yy < rh-1; yy++ {
		for xx := 0; xx < rw-1; xx++ {
			p := float64(y[yy*rw+xx])
			e += math.Abs(p-float64(y[yy*rw+xx+1])) + math.Abs(p-float64(y[(yy+1)*rw+xx]))
		}
	}
	return e
}

func mean(b []byte) float64 {
	var s float64
	for _, v := range b {
		s += float64(v)
	}
	return s / float64(len(b))
}

func abs(x int) int { return max(x, -x) }
