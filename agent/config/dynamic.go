package config

import (
	"strings"
	"time"

	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// DynamicConfig turns on dynamic anonymisation of a fixed camera: people
// (and plates) found by the detectors are masked as they move
// (masking/anonymise). It is a processing of its own: it needs its purpose,
// and the Garante's prior check where a face detector is used.
type DynamicConfig struct {
	// Purpose is tourist-webcam (G-4.5: nobody identifiable) or traffic
	// (G-5.3: pedestrians and passengers not involved hidden).
	Purpose string `yaml:"purpose"`
	// PriorCheckRef is the reference of the Garante's prior check
	// (G-3.2.1), required when a face detector is selected.
	PriorCheckRef string `yaml:"prior_check_ref"`
	// Detectors: hog, motion, face_frontal, face_profile, full_body,
	// upper_body, plate.
	Detectors []string `yaml:"detectors"`
	// Zone is where people can appear; masked whole when detection cannot
	// be trusted (late, failed, too dark).
	Zone        []maskspec.Point `yaml:"dynamic_zone"`
	Style       maskspec.Style   `yaml:"style"`
	Color       maskspec.YUV     `yaml:"color"` // fill colour, "#RRGGBB" (default black)
	Block       int              `yaml:"block"`
	Strength    int              `yaml:"strength"`
	DetectWidth int              `yaml:"detect_width"`
	Every       int              `yaml:"every"`
	Margin      float64          `yaml:"margin"`
	Deadline    Duration         `yaml:"deadline"`
	MinLuma     float64          `yaml:"min_luma"`
}

// Purposes of dynamic masking.
const (
	DynamicTourist = "tourist-webcam"
	DynamicTraffic = "traffic"
)

// Spec is the stage's configuration for camera id, defaults filled.
func (d *DynamicConfig) Spec(id string) spec.Config {
	s := spec.Config{Camera: id, Zone: d.Zone, Style: d.Style, Color: d.Color, Block: d.Block, Strength: d.Strength,
		DetectWidth: d.DetectWidth, Every: d.Every, Margin: d.Margin, Deadline: time.Duration(d.Deadline), MinLuma: d.MinLuma}
	for _, n := range d.Detectors {
		s.Detectors = append(s.Detectors, spec.Detector(n))
	}
	return s
}

// validateDynamic checks a camera's dynamic section (G-4.5, G-5.3,
// G-3.2.1) with the rules the stage applies (masking/anonymise/spec).
func (c *Config) validateDynamic(cam *CameraConfig, f func(string) string) error {
	d := cam.Dynamic
	if d == nil {
		return nil
	}
	if d.Purpose != DynamicTourist && d.Purpose != DynamicTraffic {
		return c.fieldError(f("dynamic.purpose"), "camera %q: %q is not %s (G-4.5) or %s (G-5.3): dynamic masking needs its purpose", cam.ID, d.Purpose, DynamicTourist, DynamicTraffic)
	}
	if len(cam.Presets) > 0 {
		return c.fieldError(f("dynamic"), "camera %q: dynamic masking is built for fixed cameras only (one dynamic_zone); remove it or the presets", cam.ID)
	}
	for _, n := range d.Detectors {
		if (n == string(spec.FaceFrontal) || n == string(spec.FaceProfile)) && strings.TrimSpace(d.PriorCheckRef) == "" {
			return c.fieldError(f("dynamic.detectors"), "camera %q: %s processes faces: refused without prior_check_ref, the reference of the Garante's prior check (G-3.2.1)", cam.ID, n)
		}
	}
	s := d.Spec(cam.ID)
	if err := s.Validate(); err != nil {
		return c.fieldError(f("dynamic"), "%v", err)
	}
	return nil
}
