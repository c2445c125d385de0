package viewcheck

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"time"

	"gocv.io/x/gocv"

	"velo/masking"
	"velo/masking/maskspec"
)

// RefWidth is the width in pixels of a reference (the height keeps the
// frame's aspect).
const RefWidth = 320

// Position is a PTZ camera's ONVIF position when the reference was
// captured.
type Position struct {
	Pan  float64 `json:"pan"`
	Tilt float64 `json:"tilt"`
	Zoom float64 `json:"zoom"`
}

// Basis is what a reference's thresholds derive from.
type Basis struct {
	// SourceWidth, SourceHeight: the frame the reference was captured from.
	SourceWidth  int `json:"source_width"`
	SourceHeight int `json:"source_height"`
	// Radius is the distance of the farthest mask vertex from the centre
	// (or of the frame corner when the view has no masks), as a fraction
	// of the width: rotation and scale limits are the ones that move it by
	// the shift limit.
	Radius float64 `json:"radius"`
	// Sharpness is the reference's Laplacian-to-gradient energy ratio
	// (the defocus check's basis); Textured the fraction of blocks with
	// structure (the obstruction check's).
	Sharpness float64 `json:"sharpness"`
	Textured  float64 `json:"textured"`
}

// Reference is an approved view's appearance, low resolution and already
// masked.
type Reference struct {
	Camera string
	Preset string
	// Width × Height is the size of Luma and Exclude.
	Width, Height int
	// Luma is the downscaled luma, row-major; excluded pixels hold the
	// mean of the others.
	Luma []byte
	// Exclude is 255 where a mask covers the pixel (even partly), else 0.
	Exclude []byte
	// Night marks a reference of the IR (monochrome) picture.
	Night    bool
	Captured time.Time
	// Position is nil for a camera without PTZ.
	Position *Position
	Basis    Basis
}

// NewReference makes the reference of the view whose masks are set from
// frame f. Nothing under a mask of set is kept.
func NewReference(f *masking.Frame, set maskspec.MaskSet, night bool, pos *Position) (*Reference, error) {
	where := fmt.Sprintf("camera %q preset %q", set.Camera, set.Preset)
	if f == nil || f.W < RefWidth || f.H < 16 || len(f.Data) < f.W*f.H*3/2 {
		return nil, fmt.Errorf("view reference: %s: frame too small or incomplete (need at least %d px wide I420)", where, RefWidth)
	}
	for _, m := range set.Masks {
		if m.Style == maskspec.StyleFull {
			return nil, fmt.Errorf("view reference: %s: mask %q hides the whole frame, nothing left to verify", where, m.Name)
		}
	}
	w, h := RefWidth, refHeight(f.W, f.H)
	luma, err := downscaleLuma(f, w, h)
	if err != nil {
		return nil, fmt.Errorf("view reference: %s: %w", where, err)
	}
	excl, err := exclusion(set.Masks, w, h)
	if err != nil {
		return nil, fmt.Errorf("view reference: %s: %w", where, err)
	}
	if !fillExcluded(luma, excl) {
		return nil, fmt.Errorf("view reference: %s: the masks cover the whole frame, nothing left to verify", where)
	}
	ref := &Reference{
		Camera: set.Camera, Preset: set.Preset, Width: w, Height: h,
		Luma: luma, Exclude: excl, Night: night, Captured: captureTime(f),
	}
	if pos != nil {
		p := *pos
		ref.Position = &p
	}
	ref.Basis = Basis{SourceWidth: f.W, SourceHeight: f.H, Radius: maskRadius(set.Masks, f.W, f.H)}
	st := newStructure(w, h)
	st.compute(ref.Luma)
	valid := validity(ref.Exclude, w, h)
	ref.Basis.Sharpness = round6(st.sharpness(validRuns(valid, w, h)))
	ref.Basis.Textured = round6(texturedFraction(st, valid))
	return ref, nil
}

func captureTime(f *masking.Frame) time.Time {
	t := f.Captured
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Round(0).Truncate(time.Millisecond)
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// refHeight keeps the aspect of a w×h frame at RefWidth.
func refHeight(w, h int) int {
	return max(16, int(math.Round(float64(RefWidth)*float64(h)/float64(w))))
}

// downscaleLuma returns f's Y plane resized to w×h with INTER_AREA.
func downscaleLuma(f *masking.Frame, w, h int) ([]byte, error) {
	y, _, _ := f.Planes()
	var down downscaler
	defer down.close()
	dst := gocv.NewMat()
	defer dst.Close()
	if err := down.luma(y, f.W, f.H, &dst, w, h); err != nil {
		return nil, fmt.Errorf("luma plane: %w", err)
	}
	return dst.ToBytes(), nil
}

// exclusion rasterises the masks' polygons at w×h, grown by one pixel so
// that every pixel a mask touches, even partly, is excluded.
func exclusion(masks []maskspec.Mask, w, h int) ([]byte, error) {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	defer m.Close()
	m.SetTo(gocv.NewScalar(0, 0, 0, 0))
	const sub = 8 // FillPoly's fractional bits
	for _, mk := range masks {
		if len(mk.Polygon) < 3 {
			return nil, fmt.Errorf("mask %q: polygon has %d points", mk.Name, len(mk.Polygon))
		}
		pts := make([]image.Point, len(mk.Polygon))
		for i, p := range mk.Polygon {
			// Pixel centres are at integer coordinates in OpenCV.
			pts[i] = image.Pt(int(math.Round((p.X*float64(w)-0.5)*(1<<sub))), int(math.Round((p.Y*float64(h)-0.5)*(1<<sub))))
		}
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
		gocv.FillPolyWithParams(&m, pv, color.RGBA{255, 255, 255, 255}, gocv.Line8, sub, image.Point{})
		pv.Close()
	}
	kernel := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))
	defer kernel.Close()
	grown := gocv.NewMat()
	defer grown.Close()
	gocv.Dilate(m, &grown, kernel)
	out := grown.ToBytes()
	if len(out) != w*h {
		return nil, errors.New("exclusion mask: unexpected size")
	}
	return out, nil
}

// fillExcluded sets every excluded pixel of luma to the mean of the
// others; false when every pixel is excluded.
func fillExcluded(luma, excl []byte) bool {
	var sum, n int
	for i, e := range excl {
		if e == 0 {
			sum += int(luma[i])
			n++
		}
	}
	if n == 0 {
		return false
	}
	mean := byte((sum + n/2) / n)
	for i, e := range excl {
		if e != 0 {
			luma[i] = mean
		}
	}
	return true
}

// maskRadius is the distance from the centre of the farthest vertex of the
// masks (the frame corner with none) as a fraction of the width.
func maskRadius(masks []maskspec.Mask, w, h int) float64 {
	W, H := float64(w), float64(h)
	r := 0.0
	for _, m := range masks {
		for _, p := range m.Polygon {
			r = math.Max(r, math.Hypot((p.X-0.5)*W, (p.Y-0.5)*H))
		}
	}
	if r == 0 {
		r = math.Hypot(W/2, H/2)
	}
	return round6(r / W)
}
