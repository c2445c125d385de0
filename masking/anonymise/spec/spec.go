// Package spec is the configuration of dynamic anonymisation
// (masking/anonymise): the detectors, their cascade files and every
// setting with its default and bounds. It links no OpenCV, so agent/config
// validates a site's settings with the same rules the stage applies.
package spec

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"velo/masking/maskspec"
)

// Detector names one detector a view may use.
type Detector string

// Detectors. HOG is OpenCV's built-in people detector; the Haar ones are
// cascades from Debian's opencv-data; Motion is background subtraction
// (MOG2): anything that moves in the zone, for fixed cameras.
const (
	HOG         Detector = "hog"
	FaceFrontal Detector = "face_frontal"
	FaceProfile Detector = "face_profile"
	FullBody    Detector = "full_body"
	UpperBody   Detector = "upper_body"
	Plate       Detector = "plate"
	Motion      Detector = "motion"
)

// Cascades maps the Haar detectors to their file in CascadeDir.
var Cascades = map[Detector]string{
	FaceFrontal: "haarcascade_frontalface_default.xml",
	FaceProfile: "haarcascade_profileface.xml",
	FullBody:    "haarcascade_fullbody.xml",
	UpperBody:   "haarcascade_upperbody.xml",
	Plate:       "haarcascade_russian_plate_number.xml",
}

// DefaultCascadeDir is where Debian's opencv-data installs the cascades.
const DefaultCascadeDir = "/usr/share/opencv4/haarcascades"

// Defaults.
const (
	DefaultDetectWidth = 480
	DefaultEvery       = 2
	DefaultMargin      = 0.25
	DefaultDeadline    = 250 * time.Millisecond
	DefaultMinLuma     = 28
)

// Config configures a Stage for one camera view.
type Config struct {
	Camera    string
	Detectors []Detector
	// CascadeDir holds the Haar cascades (default DefaultCascadeDir).
	CascadeDir string
	// DetectWidth: the frame is downscaled (or upscaled) to this width for
	// detection.
	DetectWidth int
	// Every: a detection every Every frames; frames between are tracked.
	Every int
	// Margin grows every box by this share of its size on each side.
	Margin float64
	// Style, Block, Strength, Color: how a box is masked (maskspec).
	Style    maskspec.Style
	Block    int
	Strength int
	Color    maskspec.YUV
	// Zone is where people can appear (normalised polygon): detections
	// count only there, and it is masked whole on a fallback. A fixed
	// camera has one (its view is ""); a PTZ camera has Zones instead.
	Zone []maskspec.Point
	// Zones is a PTZ camera's zone per approved view (preset token). The
	// stage uses the zone of the view the masker masked each frame for;
	// a frame of a view without a zone is refused (never encoded).
	Zones map[string][]maskspec.Point
	// Deadline: a detection not back within it masks the zone.
	Deadline time.Duration
	// MinLuma: a zone whose mean luma (0-255) is below it is too dark to
	// trust the detector; the zone is masked.
	MinLuma float64
	// Hold: a track not seen again by a detection is kept this many
	// frames (default 3×Every).
	Hold int
}

func (c *Config) defaults() {
	if c.CascadeDir == "" {
		c.CascadeDir = DefaultCascadeDir
	}
	if c.DetectWidth == 0 {
		c.DetectWidth = DefaultDetectWidth
	}
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.Style == "" {
		c.Style = maskspec.StylePixelate
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.MinLuma == 0 {
		c.MinLuma = DefaultMinLuma
	}
	if c.Hold == 0 {
		c.Hold = 3 * c.Every
	}
}

// Validate fills the defaults and checks c; errors name the camera and the
// field. A cascade file that is missing is an error here, never a detector
// silently left out.
func (c *Config) Validate() error {
	c.defaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("dynamic masking: camera %q: %s: %s", c.Camera, field, fmt.Sprintf(format, a...))
	}
	if len(c.Detectors) == 0 {
		return bad("detectors", "none selected")
	}
	for _, d := range c.Detectors {
		if d == HOG || d == Motion {
			continue
		}
		f, ok := Cascades[d]
		if !ok {
			return bad("detectors", "%q is not one of hog, motion, face_frontal, face_profile, full_body, upper_body, plate", d)
		}
		if _, err := os.Stat(filepath.Join(c.CascadeDir, f)); err != nil {
			return bad("detectors", "%s needs %s (Debian package opencv-data): %v", d, filepath.Join(c.CascadeDir, f), err)
		}
	}
	switch {
	case c.DetectWidth < 160 || c.DetectWidth > 1920:
		return bad("detect_width", "%d out of 160..1920", c.DetectWidth)
	case c.Every < 1 || c.Every > 25:
		return bad("every", "%d out of 1..25", c.Every)
	case math.IsNaN(c.Margin) || c.Margin < 0 || c.Margin > 1:
		return bad("margin", "%g out of 0..1", c.Margin)
	case c.Deadline < 10*time.Millisecond || c.Deadline > 5*time.Second:
		return bad("deadline", "%s out of 10ms..5s", c.Deadline)
	case c.MinLuma < 0 || c.MinLuma > 128:
		return bad("min_luma", "%g out of 0..128", c.MinLuma)
	case c.Hold < 1:
		return bad("hold", "%d must be at least 1", c.Hold)
	}
	if (len(c.Zone) > 0) == (len(c.Zones) > 0) {
		return bad("dynamic_zone", "one zone for a fixed camera, or one per preset for a PTZ camera")
	}
	zones := c.Views()
	for _, v := range zones {
		field := "dynamic_zone"
		if v != "" {
			field = fmt.Sprintf("dynamic_zone of preset %q", v)
		}
		set := maskspec.MaskSet{Camera: c.Camera, Preset: "dynamic_zone", Masks: []maskspec.Mask{c.Mask("dynamic_zone", c.ZoneOf(v))}}
		if err := set.Validate(); err != nil {
			return bad(field, "%v", err)
		}
		if set.Masks[0].Style == maskspec.StyleFull {
			return bad("style", "full is not a style for a box")
		}
		c.Block, c.Strength, c.Color = set.Masks[0].Block, set.Masks[0].Strength, set.Masks[0].Color
	}
	return nil
}

// Views are the views with a zone, sorted: "" for a fixed camera, the
// preset tokens of a PTZ camera.
func (c *Config) Views() []string {
	if len(c.Zones) == 0 {
		return []string{""}
	}
	vs := make([]string, 0, len(c.Zones))
	for v := range c.Zones {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// ZoneOf is the zone of view (nil: none).
func (c *Config) ZoneOf(view string) []maskspec.Point {
	if len(c.Zones) == 0 {
		if view == "" {
			return c.Zone
		}
		return nil
	}
	return c.Zones[view]
}

// Mask is one box (or the zone) as a static mask with the stage's style.
func (c *Config) Mask(name string, poly []maskspec.Point) maskspec.Mask {
	return maskspec.Mask{Name: name, Polygon: poly, Style: c.Style, Block: c.Block, Strength: c.Strength, Color: c.Color}
}
