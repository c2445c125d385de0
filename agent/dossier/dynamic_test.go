package dossier

import (
	"strings"
	"testing"

	"velo/agent/config"
	"velo/masking/maskspec"
)

// TestG45_G321_DossierListsDynamicMasking: the dossier names the purpose,
// the prior check, the detector settings and the zone (a PTZ camera's per
// preset) of dynamic masking.
func TestG45_G321_DossierListsDynamicMasking(t *testing.T) {
	cam := &config.CameraConfig{ID: "webcam", Dynamic: &config.DynamicConfig{Purpose: config.DynamicTourist, PriorCheckRef: "GPDP-2026-17",
		Detectors: []string{"motion", "face_frontal"}, Zone: []maskspec.Point{{X: 0, Y: 0.2}, {X: 1, Y: 0.2}, {X: 1, Y: 1}, {X: 0, Y: 1}}}}
	line := dynamicLine(cam)
	for _, want := range []string{"tourist-webcam (G-4.5)", "motion, face_frontal", "480 px wide every 2 frames", "pixelate (block 16 px)",
		"(0.00,0.20) (1.00,0.20)", "250ms", "GPDP-2026-17 (G-3.2.1)"} {
		if !strings.Contains(line, want) {
			t.Errorf("dossier line %q lacks %q", line, want)
		}
	}
	ptz := &config.CameraConfig{ID: "ptz", Dynamic: &config.DynamicConfig{Purpose: config.DynamicTraffic, Detectors: []string{"motion"}},
		Presets: []config.PresetConfig{{Token: "1", DynamicZone: []maskspec.Point{{X: 0.5, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}}},
			{Token: "2", DynamicZone: []maskspec.Point{{X: 0, Y: 0.3}, {X: 1, Y: 0.3}, {X: 1, Y: 1}}}}}
	line = dynamicLine(ptz)
	for _, want := range []string{"traffic (G-5.3)", "preset 1 (0.50,0.00) (1.00,0.00) (1.00,1.00)", "preset 2 (0.00,0.30)", "a preset the camera has just reached"} {
		if !strings.Contains(line, want) {
			t.Errorf("PTZ camera: dossier line %q lacks %q", line, want)
		}
	}
	if dynamicLine(&config.CameraConfig{ID: "plain"}) != "" {
		t.Error("a camera without dynamic masking has a dynamic line")
	}
}
