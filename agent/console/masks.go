package console

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"velo/masking/maskspec"
)

// Mask is a mask as the console edits and stores it: the colour as
// "#RRGGBB" (maskspec keeps it as YUV once read).
type Mask struct {
	Name     string           `json:"name" yaml:"name"`
	Polygon  []maskspec.Point `json:"polygon" yaml:"polygon,flow"`
	Style    maskspec.Style   `json:"style,omitempty" yaml:"style,omitempty"`
	Color    string           `json:"color,omitempty" yaml:"color,omitempty"`
	Block    int              `json:"block,omitempty" yaml:"block,omitempty"`
	Strength int              `json:"strength,omitempty" yaml:"strength,omitempty"`
}

// maxMasks and maxPoints bound what a browser may send.
const (
	maxMasks  = 64
	maxPoints = 256
)

// specMasks converts and validates masks with maskspec's rules (the ones
// velo config check applies); errors name the camera, view and mask.
func specMasks(camera, preset string, ms []Mask) ([]maskspec.Mask, error) {
	if len(ms) > maxMasks {
		return nil, fmt.Errorf("%d masks: at most %d per view", len(ms), maxMasks)
	}
	out := make([]maskspec.Mask, 0, len(ms))
	for i, m := range ms {
		if strings.TrimSpace(m.Name) == "" {
			return nil, fmt.Errorf("mask #%d has no name", i+1)
		}
		if len(m.Polygon) > maxPoints {
			return nil, fmt.Errorf("mask %q: %d points, at most %d", m.Name, len(m.Polygon), maxPoints)
		}
		sm := maskspec.Mask{Name: m.Name, Polygon: m.Polygon, Style: m.Style, Block: m.Block, Strength: m.Strength}
		if m.Color != "" {
			rgb, err := parseHex(m.Color)
			if err != nil {
				return nil, fmt.Errorf("mask %q: %w", m.Name, err)
			}
			sm.Color = maskspec.RGBToYUV(uint8(rgb>>16), uint8(rgb>>8), uint8(rgb))
		}
		out = append(out, sm)
	}
	set := maskspec.MaskSet{Camera: camera, Preset: preset, Masks: out}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	return set.Masks, nil
}

func parseHex(s string) (uint64, error) {
	v := strings.TrimPrefix(s, "#")
	rgb, err := strconv.ParseUint(v, 16, 32)
	if err != nil || len(v) != 6 {
		return 0, fmt.Errorf("colour %q is not #RRGGBB", s)
	}
	return rgb, nil
}

// consoleMasks converts a view's configured masks for the editor.
func consoleMasks(ms []maskspec.Mask) []Mask {
	out := make([]Mask, 0, len(ms))
	for _, m := range ms {
		c := ""
		if m.Color != (maskspec.YUV{}) {
			c = yuvHex(m.Color)
		}
		out = append(out, Mask{Name: m.Name, Polygon: m.Polygon, Style: m.Style, Color: c, Block: m.Block, Strength: m.Strength})
	}
	return out
}

// yuvHex is the inverse of maskspec.RGBToYUV (BT.601 limited range).
func yuvHex(c maskspec.YUV) string {
	y, u, v := float64(c.Y)-16, float64(c.U)-128, float64(c.V)-128
	cl := func(x float64) int { return int(math.Max(0, math.Min(255, math.Round(x)))) }
	r, g, b := cl(1.164*y+1.596*v), cl(1.164*y-0.392*u-0.813*v), cl(1.164*y+2.017*u)
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}

// maskDiff says what approving after changes in before: one line per
// mask added (+), removed (-) or changed (~), by name.
func maskDiff(before, after []Mask) string {
	old := map[string]Mask{}
	for _, m := range before {
		old[m.Name] = m
	}
	var lines []string
	seen := map[string]bool{}
	for _, m := range after {
		seen[m.Name] = true
		o, had := old[m.Name]
		switch {
		case !had:
			lines = append(lines, fmt.Sprintf("+ %s (%s, %d points)", m.Name, styleOf(m), len(m.Polygon)))
		case !reflect.DeepEqual(norm(o), norm(m)):
			lines = append(lines, fmt.Sprintf("~ %s (%s, %d points; was %s, %d points)", m.Name, styleOf(m), len(m.Polygon), styleOf(o), len(o.Polygon)))
		}
	}
	for _, m := range before {
		if !seen[m.Name] {
			lines = append(lines, "- "+m.Name)
		}
	}
	if len(lines) == 0 {
		return "masks unchanged"
	}
	return strings.Join(lines, "; ")
}

func norm(m Mask) Mask {
	if m.Style == "" {
		m.Style = maskspec.StyleFill
	}
	m.Color = strings.ToLower(m.Color)
	return m
}

func styleOf(m Mask) string {
	if m.Style == "" {
		return string(maskspec.StyleFill)
	}
	return string(m.Style)
}
