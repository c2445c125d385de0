package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"velo/internal/testkit"
)

// The managed views file is included strictly: each error names the file
// and the entry; a valid one replaces the view's masks and approval.
func TestER47_ManagedViewsFile(t *testing.T) {
	site := strings.Replace(testkit.SiteYAML, "gateway: gw-1\n", "gateway: gw-1\nviews_file: views.yaml\n", 1)
	for _, tc := range []struct {
		name, views, want string
	}{
		{"fixed view", "views:\n  - {camera: cam2, masks: [{name: door, polygon: [{x: 0, y: 0}, {x: 0.5, y: 0}, {x: 0.5, y: 0.5}]}], approval: {by: B, date: 2026-12-01, document: DOC-9}}\n", ""},
		{"preset", "views:\n  - {camera: cam1, preset: \"1\", masks: [], approval: {by: B, date: 2026-12-01, document: DOC-9}}\n", ""},
		{"unknown camera", "views:\n  - {camera: nope, masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "views.yaml: views[0]: camera \"nope\" is not in"},
		{"unknown preset", "views:\n  - {camera: cam1, preset: \"7\", masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "views[0]: camera \"cam1\" has no preset \"7\""},
		{"added preset", "views:\n  - {camera: cam1, preset: \"7\", position: {pan: 0.4, tilt: -0.1, zoom: 0.3}, masks: [], approval: {by: B, date: 2026-12-01, document: DOC-9}}\n", ""},
		{"added preset out of range", "views:\n  - {camera: cam1, preset: \"7\", position: {pan: 1.4}, masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "preset \"7\": outside the generic spaces"},
		{"position of a configured preset", "views:\n  - {camera: cam1, preset: \"1\", position: {pan: 0.4}, masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "views[0]: camera \"cam1\" preset \"1\": its position is in"},
		{"preset added to a fixed camera", "views:\n  - {camera: cam2, preset: \"7\", position: {pan: 0.4}, masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "camera \"cam2\" is fixed (no presets)"},
		{"preset missing", "views:\n  - {camera: cam1, masks: [], approval: {by: B, date: 2026-12-01, document: D}}\n", "has presets: name the preset"},
		{"no document", "views:\n  - {camera: cam2, masks: [], approval: {by: B, date: 2026-12-01}}\n", "approval needs by, date and document (ER-4.7)"},
		{"unknown field", "views:\n  - {camera: cam2, masks: [], approval: {by: B, date: 2026-12-01, document: D}, extra: 1}\n", "field extra not found"},
		{"bad mask", "views:\n  - {camera: cam2, masks: [{name: x, polygon: [{x: 0, y: 0}, {x: 2, y: 0}, {x: 0, y: 1}]}], approval: {by: B, date: 2026-12-01, document: D}}\n", "views.yaml: views[0]: invalid mask: camera \"cam2\" preset \"\" mask \"x\": point 2 (2,0) outside [0,1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testkit.WriteSite(t, site)
			if err := os.WriteFile(filepath.Join(filepath.Dir(p), "views.yaml"), []byte(tc.views), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "fixed view" && (len(c.Camera("cam2").Masks) != 1 || c.Camera("cam2").Approval.Document != "DOC-9") {
				t.Errorf("cam2 after the views file: %+v %+v", c.Camera("cam2").Masks, c.Camera("cam2").Approval)
			}
			if p := c.Camera("cam1").Presets; tc.name == "added preset" && (len(p) < 2 || p[len(p)-1].Token != "7" || p[len(p)-1].Position.Pan != 0.4 ||
				p[len(p)-1].Tolerance != DefaultTolerance || p[len(p)-1].Approval.Document != "DOC-9") {
				t.Errorf("cam1 after the views file added preset 7: %+v", p)
			}
			if tc.name == "preset" && (len(c.Camera("cam1").Presets[0].Masks) != 0 || c.Camera("cam1").Presets[0].Approval.Document != "DOC-9") {
				t.Errorf("cam1 preset 1 after the views file: %+v", c.Camera("cam1").Presets[0])
			}
		})
	}
	// No views file yet: nothing approved through the console.
	if _, err := Load(testkit.WriteSite(t, site)); err != nil {
		t.Errorf("missing views file: %v", err)
	}
}

func TestConsoleConfigRules(t *testing.T) {
	for _, tc := range []struct{ console, want string }{
		{"console: {listen: 127.0.0.1:8443}\n", ""},
		{"console: {listen: 0.0.0.0:8443, lan: true}\n", ""},
		{"console: {listen: 0.0.0.0:8443}\n", "console.listen: \"0.0.0.0:8443\" is off loopback"},
		{"console: {listen: nonsense}\n", "console.listen: \"nonsense\" is not host:port"},
		{"console: {listen: 127.0.0.1:8443, cert_file: c.pem}\n", "console.cert_file: cert_file and key_file go together"},
		{"console: {listen: 127.0.0.1:8443, commissioning_ttl: 3h}\n", "console.commissioning_ttl: 3h0m0s is out of 1m..1h"},
		{"console: {listen: 127.0.0.1:8443, session_ttl: 10s}\n", "console.session_ttl: 10s is out of 1m..12h"},
	} {
		_, err := Load(testkit.WriteSite(t, testkit.SiteYAML+tc.console))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: got %v, want %q", tc.console, err, tc.want)
		}
	}
}
