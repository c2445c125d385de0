package config

import (
	"strings"
	"testing"
	"velo/masking/maskspec"
)

// ER-4.7: a reload that repositions a view (preset position, tolerance or
// masks) needs a new approval document; every change is listed with its
// approval so the agent can audit it.
func TestER47_ViewChangesNeedTheirOwnApproval(t *testing.T) {
	mask := func(x float64) []maskspec.Mask {
		return []maskspec.Mask{{Name: "badge", Polygon: []maskspec.Point{{X: x, Y: 0.1}, {X: 0.5, Y: 0.1}, {X: 0.5, Y: 0.5}}}}
	}
	ptz := func(pan, x float64, doc string) *CameraConfig {
		c := &CameraConfig{ID: "p"}
		p := PresetConfig{Token: "1", Tolerance: 0.02, Approval: ApprovalConfig{By: "A", Date: "2026-01-01", Document: doc}, Masks: mask(x)}
		p.Position.Pan = pan
		c.Presets = []PresetConfig{p}
		return c
	}
	fixed := func(x float64, doc string) *CameraConfig {
		return &CameraConfig{ID: "f", Masks: mask(x), Approval: &ApprovalConfig{By: "A", Date: "2026-01-01", Document: doc}}
	}
	cases := []struct {
		name    string
		old, nc *CameraConfig
		want    string // "" none; "refused"; else What of the single change
	}{
		{"unchanged", ptz(0, 0.1, "D1"), ptz(0, 0.1, "D1"), ""},
		{"preset moved, same document", ptz(0, 0.1, "D1"), ptz(0.2, 0.1, "D1"), "refused"},
		{"preset mask changed, same document", ptz(0, 0.1, "D1"), ptz(0, 0.2, "D1"), "refused"},
		{"preset moved, new document", ptz(0, 0.1, "D1"), ptz(0.2, 0.1, "D2"), "changed"},
		{"fixed mask changed, same document", fixed(0.1, "F1"), fixed(0.2, "F1"), "refused"},
		{"fixed mask changed, new document", fixed(0.1, "F1"), fixed(0.2, "F2"), "changed"},
		{"approval corrected only", fixed(0.1, "F1"), fixed(0.1, "F1-bis"), "approval updated"},
		{"new camera", nil, fixed(0.1, "F1"), "added"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ViewChanges(tc.old, tc.nc)
			switch {
			case tc.want == "refused":
				if err == nil || !strings.Contains(err.Error(), "ER-4.7") || !strings.Contains(err.Error(), "camera \""+tc.nc.ID+"\"") {
					t.Fatalf("want refusal naming the camera and ER-4.7, got %v %+v", err, got)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "":
				if len(got) != 0 {
					t.Fatalf("changes %+v", got)
				}
			default:
				if len(got) != 1 || got[0].What != tc.want || got[0].Approval.Document == "" {
					t.Fatalf("changes %+v, want one %q with its approval", got, tc.want)
				}
			}
		})
	}
	// A preset removed and another added in one reload: both listed.
	old, nc := ptz(0, 0.1, "D1"), ptz(0, 0.1, "D1")
	nc.Presets[0].Token = "2"
	got, err := ViewChanges(old, nc)
	if err != nil || len(got) != 2 || got[0].What != "added" || got[1].What != "removed" || got[1].Approval.Document != "D1" {
		t.Fatalf("swap: %v %+v", err, got)
	}
}
