package dossier

import (
	"strings"
	"testing"

	"velo/agent/config"
	"velo/masking/maskspec"
)

// TestG45_G321_DossierListsDynamicMasking: the dossier names the purpose,
// the prior check and the detector settings of dynamic masking.
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
	if dynamicLine(&config.CameraConfig{ID: "plain"}) != "" {
		t.Error("a camera without dynamic masking has a dynamic line")
	}
}
