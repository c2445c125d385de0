package dossier

import (
	"fmt"
	"strings"

	"velo/agent/config"
	"velo/masking/anonymise/spec"
	"velo/masking/maskspec"
)

// dynamicLine describes a camera's dynamic masking for the dossier: its
// purpose, prior check, detectors and every setting that decides what is
// masked ("" when it is off).
func dynamicLine(cam *config.CameraConfig) string {
	d := cam.Dynamic
	if d == nil {
		return ""
	}
	s := d.Spec(cam)
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
	line := fmt.Sprintf("people masked as they move, purpose %s (%s); detectors %s, on a copy %d px wide every %d frames, tracked between; boxes grown by %.0f%% and %s%s; %s masked whole when a detection is later than %v, fails, or the zone's mean luma is under %.0f",
		d.Purpose, rule, strings.Join(names, ", "), s.DetectWidth, s.Every, 100*s.Margin, s.Style, strength, zonesText(&s), s.Deadline, s.MinLuma)
	if len(s.Zones) > 0 {
		line += ", and while a detection made on a preset the camera has just reached is not back (the picture is blank while it moves)"
	}
	if d.PriorCheckRef != "" {
		line += "; Garante prior check " + d.PriorCheckRef + " (G-3.2.1)"
	}
	return line
}

// zonesText is the zone of a fixed camera, or each preset's zone.
func zonesText(s *spec.Config) string {
	poly := func(z []maskspec.Point) string {
		var pts []string
		for _, p := range z {
			pts = append(pts, fmt.Sprintf("(%.2f,%.2f)", p.X, p.Y))
		}
		return strings.Join(pts, " ")
	}
	if len(s.Zones) == 0 {
		return "zone " + poly(s.Zone)
	}
	var out []string
	for _, v := range s.Views() {
		out = append(out, fmt.Sprintf("preset %s %s", v, poly(s.Zones[v])))
	}
	return "zone per preset: " + strings.Join(out, "; ") + ";"
}
