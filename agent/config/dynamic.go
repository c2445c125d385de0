package config

import (
	"fmt"
	"strings"
	"time"

	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// DynamicConfig turns on dynamic anonymisation of a camera: people (and
// plates) found by the detectors are masked as they move
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
	// be trusted (late, failed, too dark). A fixed camera's: a PTZ camera
	// has one per preset (PresetConfig.DynamicZone) and none here.
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

// Spec is the stage's configuration for cam (its dynamic section and,
// for a PTZ camera, its presets' zones); Validate fills the defaults.
func (d *DynamicConfig) Spec(cam *CameraConfig) spec.Config {
	s := spec.Config{Camera: cam.ID, Zone: d.Zone, Style: d.Style, Color: d.Color, Block: d.Block, Strength: d.Strength,
		DetectWidth: d.DetectWidth, Every: d.Every, Margin: d.Margin, Deadline: time.Duration(d.Deadline), MinLuma: d.MinLuma}
	for _, n := range d.Detectors {
		s.Detectors = append(s.Detectors, spec.Detector(n))
	}
	for _, p := range cam.Presets {
		if s.Zones == nil {
			s.Zones = map[string][]maskspec.Point{}
		}
		s.Zones[p.Token] = p.DynamicZone
	}
	return s
}

// validateDynamic checks a camera's dynamic section (G-4.5, G-5.3,
// G-3.2.1) with the rules the stage applies (masking/anonymise/spec).
func (c *Config) validateDynamic(cam *CameraConfig, f func(string) string) error {
	d := cam.Dynamic
	if err := c.validateDynamicZones(cam, f); err != nil || d == nil {
		return err
	}
	if d.Purpose != DynamicTourist && d.Purpose != DynamicTraffic {
		return c.fieldError(f("dynamic.purpose"), "camera %q: %q is not %s (G-4.5) or %s (G-5.3): dynamic masking needs its purpose", cam.ID, d.Purpose, DynamicTourist, DynamicTraffic)
	}
	for _, n := range d.Detectors {
		if (n == string(spec.FaceFrontal) || n == string(spec.FaceProfile)) && strings.TrimSpace(d.PriorCheckRef) == "" {
			return c.fieldError(f("dynamic.detectors"), "camera %q: %s processes faces: refused without prior_check_ref, the reference of the Garante's prior check (G-3.2.1)", cam.ID, n)
		}
	}
	s := d.Spec(cam)
	if err := s.Validate(); err != nil {
		return c.fieldError(f("dynamic"), "%v", err)
	}
	return nil
}

// validateDynamicZones: a fixed camera has its dynamic_zone in the
// dynamic section; a PTZ camera has one on every preset and none there
// (each approved view frames other places). A preset's zone without a
// dynamic section is refused: nothing would use it.
func (c *Config) validateDynamicZones(cam *CameraConfig, f func(string) string) error {
	d := cam.Dynamic
	if len(cam.Presets) > 0 && d != nil && len(d.Zone) > 0 {
		return c.fieldError(f("dynamic.dynamic_zone"), "camera %q: a PTZ camera has a dynamic_zone per preset (presets[].dynamic_zone), not one for all its views", cam.ID)
	}
	for j, p := range cam.Presets {
		field := f(fmt.Sprintf("presets[%d].dynamic_zone", j))
		switch {
		case d == nil && len(p.DynamicZone) > 0:
			return c.fieldError(field, "camera %q preset %q: a dynamic_zone without a dynamic section (nothing would use it)", cam.ID, p.Token)
		case d == nil:
			continue
		case len(p.DynamicZone) == 0:
			return c.fieldError(field, "camera %q preset %q: required: the camera has dynamic masking, and each preset frames other places", cam.ID, p.Token)
		}
		set := maskspec.MaskSet{Camera: cam.ID, Preset: p.Token, Masks: []maskspec.Mask{{Name: "dynamic_zone", Polygon: p.DynamicZone, Style: maskspec.StyleFill}}}
		if err := set.Validate(); err != nil {
			return c.fieldError(field, "camera %q preset %q: %v", cam.ID, p.Token, err)
		}
	}
	return nil
}
