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
	"velo/agent/access"
	"velo/agent/commands"
	"velo/agent/config"
	"velo/internal/testkit"

	"github.com/rs/zerolog"
)

// verbActions is each command verb's action.
func verbActions() map[string]access.Action {
	m := map[string]access.Action{}
	for _, v := range commands.Verbs() {
		m[v], _ = commands.Action(v)
	}
	return m
}

// RoleMatrix is what each role may do, written from docs/regulation.md
// (G-3.3.1 a/b/d, G-3.3.2, ER-4.3, ER-4.4, ER-4.6, TN) — not read from
// Permissions, so a change to the table must change this too.
var RoleMatrix = map[string][]access.Action{
	access.RoleLiveViewer:      {access.ActLiveView, access.ActStateRefresh},
	access.RoleRecordingViewer: {access.ActRecordingList, access.ActRecordingView, access.ActStateRefresh},
	access.RoleExporter:        {access.ActRecordingList, access.ActExport, access.ActHold, access.ActStateRefresh},
	access.RolePTZMaintainer:   {access.ActPresetApply, access.ActStateRefresh},
	access.RoleInstaller:       {access.ActDossier, access.ActMaskPreview, access.ActViewCapture, access.ActStateRefresh, access.ActCommission},
	access.RoleAdmin:           {access.ActLiveView, access.ActRecordingList, access.ActRecordingView, access.ActHold, access.ActPresetApply, access.ActConfigReload, access.ActStateRefresh, access.ActDossier, access.ActMaskPreview, access.ActViewCapture, access.ActCommission, access.ActViewApprove},
}

// G-3.3.1, ER-4.3: every role × every action, through the entry points the
// agent uses — the relay's reader check for live view and the signed
// command check for each verb — for an operator assigned the camera and
// one who is not. (Recordings and the dossier: cmd/velo's matrix test.)
func TestG331_RoleMatrixAgent(t *testing.T) {
	covered := map[access.Action]bool{access.ActRecordingList: true, access.ActRecordingView: true, access.ActExport: true, access.ActHold: true, access.ActDossier: true, access.ActMaskPreview: true, access.ActViewCapture: true} // CLI-only
	covered[access.ActCommission], covered[access.ActViewApprove] = true, true                                                                                                                                                       // the console's (agent/console tests)
	covered[access.ActLiveView] = true
	for _, a := range verbActions() {
		covered[a] = true
	}
	for _, a := range access.Actions() {
		if !covered[a] {
			t.Errorf("action %q has no entry point in the matrix test", a)
		}
	}
	dir := t.TempDir()
	var ops strings.Builder
	files := map[string]string{"cam.pw": "c\n"}
	for _, r := range access.Roles() {
		// Each operator has their own credential file (G-3.3.2), and the
		// admin says why one person both moves cameras and watches (G-3.3.1 a).
		reason := ""
		if r == access.RoleAdmin {
			reason = ", combined_roles_reason: site owner"
		}
		fmt.Fprintf(&ops, "  - {name: %s, password_file: %s.cred, roles: [%s], cameras: [cam1]%s}\n", r, r, r, reason)
		fmt.Fprintf(&ops, "  - {name: %s-elsewhere, password_file: %s-elsewhere.cred, roles: [%s], cameras: [cam2]%s}\n", r, r, r, reason)
		for _, name := range []string{r, r + "-elsewhere"} {
			files[name+".cred"] = access.HashCredential("test-site", name, "matrix-pw", 1, time.Now().Add(time.Hour)) + "\n"
		}
	}
	text := strings.Replace(testkit.SiteYAML, "operators:\n  - name: ops\n    password_file: ops.pw\n    roles: [live-viewer]\n    cameras: [cam1]\n", "operators:\n"+ops.String(), 1)
	if text == testkit.SiteYAML {
		t.Fatal("test bug: operators not replaced")
	}
	files["site.yaml"] = strings.ReplaceAll(text, "REC", filepath.Join(dir, "rec"))
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	now := time.Now()
	args := map[string]string{"preset/apply": `{"camera":"cam1","preset":"1"}`, "config/reload": `{}`, "state/refresh": `{}`}
	for _, role := range access.Roles() {
		for _, suffix := range []string{"", "-elsewhere"} {
			name := role + suffix
			got := map[access.Action]bool{}
			if _, ok := a.liveAllowed(name, "cam1"); ok {
				got[access.ActLiveView] = true
			}
			for verb, act := range verbActions() {
				c := commands.Command{Gateway: cfg.Gateway, RequestID: "m-" + name + verb, Operator: name,
					IssuedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(time.Minute).Format(time.RFC3339Nano), Args: json.RawMessage(args[verb])}
				commands.Sign("matrix-pw", cfg.Site.ID, verb, &c)
				if _, err := commands.Check(cfg, verb, &c, now); err == nil {
					got[act] = true
				} else if !strings.Contains(err.Error(), "no role allowed") && !strings.Contains(err.Error(), "not assigned") {
					t.Errorf("%s %s: refused for another reason: %v", name, verb, err)
				}
			}
			for act := range covered {
				if act == access.ActLiveView || slices.Contains(slices.Collect(maps.Values(verbActions())), act) {
					want := slices.Contains(RoleMatrix[role], act)
					if act != access.ActStateRefresh && act != access.ActConfigReload && suffix != "" {
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
