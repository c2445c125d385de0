package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// RoleMatrix is what each role may do, written from REGULATION.md
// (G-3.3.1 a/b/d, G-3.3.2, ER-4.3, ER-4.4, ER-4.6, TN) — not read from
// Permissions, so a change to the table must change this too.
var RoleMatrix = map[string][]Action{
	RoleLiveViewer:      {ActLiveView, ActStateRefresh},
	RoleRecordingViewer: {ActRecordingList, ActRecordingView, ActStateRefresh},
	RoleExporter:        {ActRecordingList, ActExport, ActHold, ActStateRefresh},
	RolePTZMaintainer:   {ActPresetApply, ActStateRefresh},
	RoleInstaller:       {ActDossier, ActMaskPreview, ActStateRefresh},
	RoleAdmin:           {ActLiveView, ActRecordingList, ActRecordingView, ActHold, ActPresetApply, ActConfigReload, ActStateRefresh, ActDossier, ActMaskPreview},
}

// G-3.3.1, ER-4.3: every role × every action, through the entry points the
// agent uses — the relay's reader check for live view and the signed
// command check for each verb — for an operator assigned the camera and
// one who is not. (Recordings and the dossier: cmd/velo's matrix test.)
func TestG331_RoleMatrixAgent(t *testing.T) {
	covered := map[Action]bool{ActRecordingList: true, ActRecordingView: true, ActExport: true, ActHold: true, ActDossier: true, ActMaskPreview: true} // CLI-only
	covered[ActLiveView] = true
	for _, a := range verbActions {
		covered[a] = true
	}
	for _, a := range Actions() {
		if !covered[a] {
			t.Errorf("action %q has no entry point in the matrix test", a)
		}
	}
	dir := t.TempDir()
	var ops strings.Builder
	for _, r := range Roles {
		fmt.Fprintf(&ops, "  - {name: %s, password_file: op.pw, roles: [%s], cameras: [cam1]}\n", r, r)
		fmt.Fprintf(&ops, "  - {name: %s-elsewhere, password_file: op.pw, roles: [%s], cameras: [cam2]}\n", r, r)
	}
	text := strings.Replace(goodConfig, "operators:\n  - name: ops\n    password_file: ops.pw\n    roles: [live-viewer, ptz-maintainer]\n    cameras: [cam1]\n", "operators:\n"+ops.String(), 1)
	if text == goodConfig {
		t.Fatal("test bug: operators not replaced")
	}
	for name, s := range map[string]string{"op.pw": "matrix-pw\n", "cam.pw": "c\n", "site.yaml": strings.ReplaceAll(text, "REC", filepath.Join(dir, "rec"))} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop())
	now := time.Now()
	args := map[string]string{"preset/apply": `{"camera":"cam1","preset":"1"}`, "config/reload": `{}`, "state/refresh": `{}`}
	for _, role := range Roles {
		for _, suffix := range []string{"", "-elsewhere"} {
			name := role + suffix
			got := map[Action]bool{}
			if _, ok := a.liveAllowed(name, "cam1"); ok {
				got[ActLiveView] = true
			}
			for verb, act := range verbActions {
				c := Command{Gateway: cfg.Gateway, RequestID: "m-" + name + verb, Operator: name,
					IssuedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(time.Minute).Format(time.RFC3339Nano), Args: json.RawMessage(args[verb])}
				SignCommand("matrix-pw", cfg.Site.ID, verb, &c)
				camera := ""
				if verb == "preset/apply" {
					camera = "cam1"
				}
				if _, err := checkCommand(cfg, verb, &c, camera, now); err == nil {
					got[act] = true
				} else if !strings.Contains(err.Error(), "no role allowed") && !strings.Contains(err.Error(), "not assigned") {
					t.Errorf("%s %s: refused for another reason: %v", name, verb, err)
				}
			}
			for act := range covered {
				if act == ActLiveView || slices.Contains(slices.Collect(maps.Values(verbActions)), act) {
					want := slices.Contains(RoleMatrix[role], act)
					if act != ActStateRefresh && act != ActConfigReload && suffix != "" {
						want = false // camera actions need the camera assigned
					}
					if got[act] != want {
						t.Errorf("role %s (%s): %s allowed=%v, want %v", role, name, act, got[act], want)
					}
				}
			}
		}
	}
}
