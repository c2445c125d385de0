package anonymise_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"velo/masking"
	"velo/masking/maskspec"
)

// The clips Debian's opencv-doc ships (deploy/deps.sh installs it).
const (
	vtestClip    = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	megamindClip = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
)

// magenta is the fill of the dynamic masks in the coverage tests: a
// colour vtest.avi does not have, so a masked pixel is recognised in the
// decoded output.
var magenta = maskspec.RGBToYUV(255, 0, 255)

type labels struct {
	W, H   int
	Frames map[int][][4]int
}

func loadLabels(t testing.TB, path string) labels {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Width, Height int
		Frames        map[string][][4]int
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	l := labels{W: raw.Width, H: raw.Height, Frames: map[int][][4]int{}}
	for k, v := range raw.Frames {
		n, err := strconv.Atoi(k)
		if err != nil {
			t.Fatalf("%s: frame %q", path, k)
		}
		l.Frames[n] = v
	}
	return l
}

// isMasked: the pixel (x, y) of an I420 frame has the magenta fill (with
// the tolerance an H.264 round trip needs).
func isMasked(f *masking.Frame, x, y int) bool {
	yp, up, vp := f.Planes()
	c := (y/2)*(f.W/2) + x/2
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	return d(yp[y*f.W+x], magenta.Y) < 40 && d(up[c], magenta.U) < 32 && d(vp[c], magenta.V) < 32
}

// tally accumulates coverage (people whose box is ≥ 90 % masked) and the
// share of the frame masked.
type tally struct {
	people, covered int
	frames          int
	maskedShare     float64
	missed          []string
}

// add scores frame f (scaled from the labels' size) against boxes.
func (t *tally) add(n int, f *masking.Frame, boxes [][4]int, lw, lh int) {
	sx, sy := float64(f.W)/float64(lw), float64(f.H)/float64(lh)
	for _, b := range boxes {
		x0, y0 := int(float64(b[0])*sx), int(float64(b[1])*sy)
		x1, y1 := min(f.W, int(float64(b[2])*sx)), min(f.H, int(float64(b[3])*sy))
		in, all := 0, 0
		var bands [4]int // unmasked pixels per quarter of the box's height
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				all++
				if isMasked(f, x, y) {
					in++
				} else {
					bands[min(3, 4*(y-y0)/max(1, y1-y0))]++
				}
			}
		}
		t.people++
		if all > 0 && float64(in) >= 0.9*float64(all) {
			t.covered++
		} else {
			q := float64(max(all, 1)) / 4
			t.missed = append(t.missed, fmt.Sprintf("frame %d box %v %.0f%% (unmasked by quarter, head to feet: %.0f %.0f %.0f %.0f %%)", n, b,
				100*float64(in)/float64(max(all, 1)), 100*float64(bands[0])/q, 100*float64(bands[1])/q, 100*float64(bands[2])/q, 100*float64(bands[3])/q))
		}
	}
	m := 0
	for y := 0; y < f.H; y += 2 {
		for x := 0; x < f.W; x += 2 {
			if isMasked(f, x, y) {
				m++
			}
		}
	}
	t.frames++
	t.maskedShare += float64(m) / float64((f.W/2)*(f.H/2))
}

func (t *tally) coverage() float64 { return float64(t.covered) / float64(max(t.people, 1)) }
func (t *tally) cost() float64     { return t.maskedShare / float64(max(t.frames, 1)) }
