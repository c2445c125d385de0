package maskspec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Point is a vertex in normalized image coordinates: x right, y down, both
// in [0,1] (0,0 is the top-left corner of the image, 1,1 the bottom-right).
type Point struct {
	X float64 `yaml:"x" json:"x"`
	Y float64 `yaml:"y" json:"y"`
}

// Style says how a mask hides what is under it.
type Style string

// Styles. Fill is the default and the only irreversible one: pixelate and
// blur keep coarse information that can sometimes be partly recovered.
const (
	StyleFill     Style = "fill"
	StylePixelate Style = "pixelate"
	StyleBlur     Style = "blur"
	// StyleFull blanks the whole frame with the fill colour.
	StyleFull Style = "full"
)

// YUV is a colour in BT.601 limited range.
type YUV struct{ Y, U, V uint8 }

// UnmarshalYAML reads "#RRGGBB" and converts it to BT.601 limited-range YUV.
func (c *YUV) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimPrefix(strings.TrimSpace(n.Value), "#")
	rgb, err := strconv.ParseUint(v, 16, 32)
	if err != nil || len(v) != 6 {
		return fmt.Errorf("line %d: colour %q is not #RRGGBB", n.Line, n.Value)
	}
	*c = RGBToYUV(uint8(rgb>>16), uint8(rgb>>8), uint8(rgb))
	return nil
}

// RGBToYUV converts to BT.601 limited range.
func RGBToYUV(r, g, b uint8) YUV {
	R, G, B := float64(r), float64(g), float64(b)
	y := 16 + 0.257*R + 0.504*G + 0.098*B
	u := 128 - 0.148*R - 0.291*G + 0.439*B
	v := 128 + 0.439*R - 0.368*G - 0.071*B
	c := func(x float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(x)))) }
	return YUV{c(y), c(u), c(v)}
}

// Black is the default fill colour (BT.601 limited range).
func Black() YUV { return YUV{Y: 16, U: 128, V: 128} }

// Mask is one masked region.
type Mask struct {
	Name    string  `yaml:"name" json:"name"`
	Polygon []Point `yaml:"polygon" json:"polygon"`
	Style   Style   `yaml:"style" json:"style"`
	// Color is the fill colour, "#RRGGBB" in YAML (default black).
	Color YUV `yaml:"color" json:"-"`
	// Block is the pixelate block size in pixels (default 16).
	Block int `yaml:"block" json:"block,omitempty"`
	// Strength is the blur box radius in pixels (default 12).
	Strength int `yaml:"strength" json:"strength,omitempty"`
}

// MaskSet is the set of masks for one camera view (an approved preset, or
// "" for a fixed camera).
type MaskSet struct {
	Camera string `yaml:"-" json:"camera"`
	Preset string `yaml:"preset" json:"preset"`
	Masks  []Mask `yaml:"masks" json:"masks"`
}

// Defaults for styles.
const (
	DefaultBlock    = 16
	DefaultStrength = 12
)

// Minimum strengths (G-4.5: nobody identifiable in a masked region).
//
// Surveillance practice (EN 62676-4) rates a face by the pixels across it:
// about 40 to identify a person, 20 to recognise a known one, 10 to
// observe, 4 to detect. A mask must leave a face at most at the
// observation level, so Velo bounds the detail a pixelate block or a blur
// may keep for a face as wide as a sixth of the frame (an entrance
// close-up): at most 8 blocks across it, so a block is at least 1/48 of
// the frame's width; a box blur of radius r keeps about as much as a
// block of 4r/3 (measured on OpenCV's Megamind.avi faces with its Haar
// detectors), so r is at least 1/64 of the width. Whatever the config
// says, a weaker setting is raised to these floors for each frame size
// (FloorBlock, FloorStrength); below MinBlock or MinStrength pixels the
// config is refused outright.
const (
	MinBlock    = 8
	MinStrength = 6
)

// FloorBlock is the smallest pixelate block applied to a frame w pixels wide.
func FloorBlock(w int) int { return max(MinBlock, (w+47)/48) }

// FloorStrength is the smallest blur radius applied to a frame w pixels wide.
func FloorStrength(w int) int { return max(MinStrength, (w+63)/64) }

// ErrInvalidMask wraps every validation error.
var ErrInvalidMask = errors.New("invalid mask")

// Validate checks every mask of the set and fills defaults. Errors name the
// camera, preset and mask.
func (s *MaskSet) Validate() error {
	where := func(i int) string {
		name := s.Masks[i].Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		return fmt.Sprintf("camera %q preset %q mask %q", s.Camera, s.Preset, name)
	}
	for i := range s.Masks {
		m := &s.Masks[i]
		switch m.Style {
		case "":
			m.Style = StyleFill
		case StyleFill, StylePixelate, StyleBlur, StyleFull:
		default:
			return fmt.Errorf("%w: %s: style %q is not fill, pixelate, blur or full", ErrInvalidMask, where(i), m.Style)
		}
		if m.Color == (YUV{}) {
			m.Color = Black()
		}
		if m.Style == StylePixelate {
			if m.Block == 0 {
				m.Block = DefaultBlock
			}
			if m.Block < MinBlock || m.Block > 256 {
				return fmt.Errorf("%w: %s: block %d out of %d..256 (G-4.5: smaller blocks leave faces identifiable)", ErrInvalidMask, where(i), m.Block, MinBlock)
			}
		}
		if m.Style == StyleBlur {
			if m.Strength == 0 {
				m.Strength = DefaultStrength
			}
			if m.Strength < MinStrength || m.Strength > 128 {
				return fmt.Errorf("%w: %s: strength %d out of %d..128 (G-4.5: a weaker blur leaves faces identifiable)", ErrInvalidMask, where(i), m.Strength, MinStrength)
			}
		}
		if m.Style == StyleFull {
			continue // no polygon needed
		}
		if len(m.Polygon) < 3 {
			return fmt.Errorf("%w: %s: polygon has %d points, need at least 3", ErrInvalidMask, where(i), len(m.Polygon))
		}
		for j, p := range m.Polygon {
			if math.IsNaN(p.X) || math.IsNaN(p.Y) || p.X < 0 || p.X > 1 || p.Y < 0 || p.Y > 1 {
				return fmt.Errorf("%w: %s: point %d (%g,%g) outside [0,1]", ErrInvalidMask, where(i), j+1, p.X, p.Y)
			}
		}
		if a, b, ok := selfIntersection(m.Polygon); ok {
			return fmt.Errorf("%w: %s: polygon is self-intersecting (edges %d and %d cross)", ErrInvalidMask, where(i), a+1, b+1)
		}
		if polygonArea(m.Polygon) == 0 {
			return fmt.Errorf("%w: %s: polygon has zero area", ErrInvalidMask, where(i))
		}
	}
	return nil
}

func polygonArea(p []Point) float64 {
	var a float64
	for i := range p {
		j := (i + 1) % len(p)
		a += p[i].X*p[j].Y - p[j].X*p[i].Y
	}
	return math.Abs(a) / 2
}

// selfIntersection reports two non-adjacent edges that intersect (or
// adjacent edges that overlap).
func selfIntersection(p []Point) (int, int, bool) {
	n := len(p)
	for i := 0; i < n; i++ {
		a1, a2 := p[i], p[(i+1)%n]
		for j := i + 1; j < n; j++ {
			b1, b2 := p[j], p[(j+1)%n]
			adjacent := j == i+1 || (i == 0 && j == n-1)
			if adjacent {
				// Adjacent edges share a vertex; they must not fold back
				// onto each other.
				if collinearOverlap(a1, a2, b1, b2) {
					return i, j, true
				}
				continue
			}
			if segmentsIntersect(a1, a2, b1, b2) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

func cross(o, a, b Point) float64 { return (a.X-o.X)*(b.Y-o.Y) - (a.Y-o.Y)*(b.X-o.X) }

func onSegment(a, b, p Point) bool {
	return math.Min(a.X, b.X) <= p.X && p.X <= math.Max(a.X, b.X) && math.Min(a.Y, b.Y) <= p.Y && p.Y <= math.Max(a.Y, b.Y)
}

func segmentsIntersect(a1, a2, b1, b2 Point) bool {
	d1, d2 := cross(b1, b2, a1), cross(b1, b2, a2)
	d3, d4 := cross(a1, a2, b1), cross(a1, a2, b2)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(b1, b2, a1)) || (d2 == 0 && onSegment(b1, b2, a2)) ||
		(d3 == 0 && onSegment(a1, a2, b1)) || (d4 == 0 && onSegment(a1, a2, b2))
}

// collinearOverlap: two edges sharing a vertex lie on one line and overlap
// beyond that vertex.
func collinearOverlap(a1, a2, b1, b2 Point) bool {
	if cross(a1, a2, b1) != 0 || cross(a1, a2, b2) != 0 {
		return false
	}
	// Direction check: the edges point away from the shared vertex in the
	// same direction.
	var shared, oa, ob Point
	switch {
	case a2 == b1:
		shared, oa, ob = a2, a1, b2
	case a1 == b2:
		shared, oa, ob = a1, a2, b1
	default:
		return false
	}
	dot := (oa.X-shared.X)*(ob.X-shared.X) + (oa.Y-shared.Y)*(ob.Y-shared.Y)
	return dot > 0
}

// FailMode says what happens to a frame that cannot be masked.
type FailMode string

// Fail modes. Either way the raw frame is never passed on.
const (
	FailDrop  FailMode = "drop"  // the frame is discarded
	FailBlank FailMode = "blank" // the frame is replaced by a blank frame
)
