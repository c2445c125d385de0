package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"velo/agent/audit"
	"velo/masking/viewcheck"
	"velo/onvif/camsim"
)

// velo view capture records a view's reference: only installers and
// admins, audited with the file's SHA-256, refused while a PTZ camera is
// off the approved position, never replacing a reference without
// --replace (audited with both hashes); the dossier shows the hash.
func TestViewCapture(t *testing.T) {
	dir, sim, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	capture := func(op string, args ...string) (string, string, int) {
		return runCLI(t, append([]string{"view", "capture", "--config", cfg, "--operator", op, "--password-file", pwFile(t)}, args...)...)
	}
	if _, se, code := capture("ops", "--camera", "df"); code == 0 || !strings.Contains(se, "view-capture: refused") {
		t.Fatalf("live viewer: exit %d: %s", code, se)
	}
	so, se, code := capture("inst", "--camera", "df")
	if code != 0 {
		t.Fatalf("fixed camera: exit %d: %s %s", code, so, se)
	}
	ref := filepath.Join(dir, "state", "references", "df", "fixed.day.ref")
	raw, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	if !strings.Contains(so, hash) {
		t.Errorf("output %q lacks the hash %s", so, hash)
	}
	if r, err := viewcheck.Load(ref); err != nil || r.Camera != "df" || r.Preset != "" || r.Night || r.Position != nil {
		t.Errorf("reference %+v: %v", r, err)
	}
	if _, se, code := capture("inst", "--camera", "df"); code == 0 || !strings.Contains(se, "--replace") {
		t.Errorf("second capture without --replace: exit %d: %s", code, se)
	}
	if _, se, code := capture("boss", "--camera", "df", "--replace"); code != 0 {
		t.Fatalf("--replace: exit %d: %s", code, se)
	}
	// A PTZ camera off its approved position is refused, on it accepted.
	tamperTo(t, sim.Camera("dp"), camsim.Position{Pan: -0.5})
	if _, se, code := capture("inst", "--camera", "dp", "--preset", "2"); code == 0 || !strings.Contains(se, "off the approved position") {
		t.Errorf("PTZ off its preset: exit %d: %s", code, se)
	}
	tamperTo(t, sim.Camera("dp"), camsim.Position{Pan: 0.15, Tilt: 0.1, Zoom: 0.5})
	if _, se, code := capture("inst", "--camera", "dp", "--preset", "2"); code != 0 {
		t.Fatalf("PTZ on its preset: exit %d: %s", code, se)
	}
	es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "view_capture"})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range es {
		outcomes = append(outcomes, e.Actor+":"+e.Outcome)
	}
	if got := strings.Join(outcomes, " "); got != "ops:refused inst:ok inst:refused boss:ok inst:refused inst:ok" {
		t.Errorf("audit of captures: %s", got)
	}
	if es[3].Fields["replaced_sha256"] != hash || es[3].Fields["sha256"] == hash || es[1].Fields["sha256"] != hash {
		t.Errorf("replacement audit: %+v", es[3].Fields)
	}
	// The dossier names the references of the views.
	out := filepath.Join(dir, "d.json")
	if _, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "inst", "--password-file", pwFile(t), "--out", out, "--no-move", "--allow-gaps"); code != 0 {
		t.Fatalf("dossier: exit %d: %s", code, se)
	}
	d, _ := os.ReadFile(out)
	if !strings.Contains(string(d), es[3].Fields["sha256"]) || !strings.Contains(string(d), es[5].Fields["sha256"]) {
		t.Errorf("dossier lacks the references' hashes %s, %s", es[3].Fields["sha256"], es[5].Fields["sha256"])
	}
}
