package dossier

import (
	"fmt"
	"strings"

	"velo/agent/config"
)

// dynamicLine describes a camera's dynamic masking for the dossier: its
// purpose, prior check, detectors and every setting that decides what is
// masked ("" when it is off).
func dynamicLine(cam *config.CameraConfig) string {
	d := cam.Dynamic
	if d == nil {
		return ""
	}
	s := d.Spec(cam.ID)
	_ = s.Validate() // fills the defaults; the config was validated on load
	rule := map[string]string{config.DynamicTourist: "G-4.5", config.DynamicTraffic: "G-5.3"}[d.Purpose]
	var names []string
	for _, n := range s.Detectors {
		names = append(names, string(n))
	}
	strength := ""
	switch s.Style {
	case "pixelate":
		strength = fmt.Sprintf(" (block %d px)", s.Block)
	case "blur":
		strength = fmt.Sprintf(" (radius %d px)", s.Strength)
	}
	var pts []string
	for _, p := range s.Zone {
		pts = append(pts, fmt.Sprintf("(%.2f,%.2f)", p.X, p.Y))
	}
	line := fmt.Sprintf("people masked as they move, purpose %s (%s); detectors %s, on a copy %d px wide every %d frames, tracked between; boxes grown by %.0f%% and %s%s; zone %s masked whole when a detection is later than %v, fails, or the zone's mean luma is under %.0f",
		d.Purpose, rule, strings.Join(names, ", "), s.DetectWidth, s.Every, 100*s.Margin, s.Style, strength, strings.Join(pts, " "), s.Deadline, s.MinLuma)
	if d.PriorCheckRef != "" {
		line += "; Garante prior check " + d.PriorCheckRef + " (G-3.2.1)"
	}
	return line
}
