package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"velo/agent/access"
	"velo/agent/retention"
)

// G-3.3.1 a/b/d, ER-4.4, ER-4.6, TN: every role × every CLI action
// (recording list, view, export, hold, release; dossier; mask preview;
// view capture), through the real
// commands, for an operator assigned the camera and one who is not. The
// expected matrix is written from docs/regulation.md, not read from the
// permission table.
func TestG331_RoleMatrixCLI(t *testing.T) {
	matrix := map[string][]string{
		access.RoleLiveViewer:      {},
		access.RoleRecordingViewer: {"list", "view"},
		access.RoleExporter:        {"list", "export", "hold", "release"},
		access.RolePTZMaintainer:   {},
		access.RoleInstaller:       {"dossier", "preview", "capture"},
		access.RoleAdmin:           {"list", "view", "hold", "release", "dossier", "preview", "capture"},
	}
	dir := t.TempDir()
	var ops strings.Builder
	for _, r := range access.Roles() {
		// Each operator has their own password file (G-3.3.2), and the admin
		// says why one person both moves cameras and watches (G-3.3.1 a).
		reason := ""
		if r == access.RoleAdmin {
			reason = ", combined_roles_reason: site owner"
		}
		fmt.Fprintf(&ops, "  - {name: %s, password_file: %s.pw, roles: [%s], cameras: [mc]%s}\n", r, r, r, reason)
		fmt.Fprintf(&ops, "  - {name: %s-elsewhere, password_file: %s-elsewhere.pw, roles: [%s], cameras: [other]%s}\n", r, r, r, reason)
	}
	site := fmt.Sprintf(`site: {id: m, name: M, controller: C, purposes: [p], contact: c@example.org}
gateway: g
state_dir: state
broker: {embedded_listen: "%s"}
outputs: {record_dir: rec, rtsp_listen: "%s", recording_socket: rec.sock}
operators:
%scameras:
  - id: mc
    purpose: p
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-MC}
    xaddr: http://127.0.0.1:9/onvif/device_service
    record: {enabled: true}
  - id: other
    purpose: p
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-OT}
    xaddr: http://127.0.0.1:9/onvif/device_service
`, freeAddr(t), freeAddr(t), ops.String())
	cfgPath := filepath.Join(dir, "site.yaml")
	files := map[string]string{"site.yaml": site}
	for _, r := range access.Roles() {
		files[r+".pw"], files[r+"-elsewhere.pw"] = pw+"\n", pw+"\n"
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// One sealed segment of camera mc.
	store, _, err := retention.Open(filepath.Join(dir, "rec"), filepath.Join(dir, "state"), retention.NewSystemClock())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute).UTC()
	plain := filepath.Join(dir, "rec", "mc_"+start.Format("20060102T150405Z")+".mkv")
	if err := os.WriteFile(plain, []byte("not really video"), 0o600); err != nil {
		t.Fatal(err)
	}
	seg, err := store.Seal(plain, "mc", start, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The recordings are reachable only through the running agent (G-3.4).
	startAgent(t, cfgPath)
	for _, role := range access.Roles() {
		for _, suffix := range []string{"", "-elsewhere"} {
			name := role + suffix
			cli := func(args ...string) (string, int) {
				_, se, code := runCLI(t, append(args, "--config", cfgPath, "--operator", name, "--password-file", pwFile(t))...)
				return se, code
			}
			got := map[string]string{}
			if se, code := cli("recording", "list"); code == 0 {
				got["list"] = ""
			} else {
				got["list!"] = se
			}
			try := func(action string, args ...string) {
				se, code := cli(args...)
				if code == 0 {
					got[action] = ""
				} else {
					got[action+"!"] = se
				}
			}
			try("view", "recording", "view", "--segment", seg.Name, "--reason", "maintenance", "--ref", "T-1", "--out", filepath.Join(dir, name+".mkv"))
			try("export", "recording", "export", "--segment", seg.Name, "--ref", "R.G. 9/2026", "--out", filepath.Join(dir, name+".exp.mkv"))
			try("hold", "recording", "hold", "--segment", seg.Name, "--ref", "R.G. 9/2026")
			if _, held := got["hold"]; held {
				try("release", "recording", "release", "--segment", seg.Name)
			} else {
				// Released by someone who may, so that this operator's
				// release is tried on a held segment.
				if err := retention.SetHold(filepath.Join(dir, "rec"), filepath.Join(dir, "state"), retention.Hold{Segment: seg.Name, Ref: "R.G. 9/2026", By: "test"}); err != nil {
					t.Fatal(err)
				}
				try("release", "recording", "release", "--segment", seg.Name)
				retention.ReleaseHold(filepath.Join(dir, "state"), seg.Name)
			}
			try("dossier", "dossier", "--out", filepath.Join(dir, name+".json"), "--no-move", "--allow-gaps", "--timeout", "3s")
			// The camera is not reachable: allowed means it got past the
			// role check to the camera.
			if se, _ := cli("mask", "preview", "--camera", "mc", "--timeout", "3s", "--out", filepath.Join(dir, name+".jpg")); strings.Contains(se, "mask-preview: refused") {
				got["preview!"] = se
			} else {
				got["preview"] = ""
			}
			if se, _ := cli("view", "capture", "--camera", "mc", "--timeout", "3s"); strings.Contains(se, "view-capture: refused") {
				got["capture!"] = se
			} else {
				got["capture"] = ""
			}
			for _, act := range []string{"list", "view", "export", "hold", "release", "dossier", "preview", "capture"} {
				want := slices.Contains(matrix[role], act)
				if suffix != "" && act != "list" && act != "dossier" {
					want = false // a segment of a camera not assigned
				}
				_, ok := got[act]
				if ok != want {
					t.Errorf("%s: %s allowed=%v, want %v (%s)", name, act, ok, want, strings.TrimSpace(got[act+"!"]))
				}
				if se := got[act+"!"]; !ok && !strings.Contains(se, "refused") {
					t.Errorf("%s: %s failed, not refused: %s", name, act, se)
				}
			}
		}
	}
}
