package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/agent/audit"
	"velo/agent/dossier"
	"velo/onvif/camsim"
)

// G-4.1, invariant 1: a mask file whose set for the preset has no masks
// is refused; the preview would be the unmasked picture.
func TestG41_PreviewRefusesAnEmptyMaskSet(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "em", Address: "127.0.98.13", Username: "op", Password: pw, Scene: "badge", FPS: 10, Width: 640, Height: 360})
	dir := t.TempDir()
	masks := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(masks, []byte("camera: em\nsets:\n  - preset: \"\"\n    masks: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p.jpg")
	_, se, code := runCLI(t, "mask", "preview", "--stream", sim.Camera("em").RTSPURL("main"), "--user", "op", "--password-file", pwFile(t), "--masks", masks, "--out", out)
	if code == 0 || !strings.Contains(se, "empty.yaml") || !strings.Contains(se, "has no masks") {
		t.Errorf("exit %d: %s", code, se)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an unmasked preview was written")
	}
}

// ER-3.2: the preview applies a preset's masks only while the camera is
// at that preset's approved position (the PTZ lock's tolerance); off it,
// it refuses naming the camera, the preset and where the camera is, and
// the refusal is audited.
func TestER32_PreviewChecksTheCameraIsAtThePreset(t *testing.T) {
	dir, sim, boxes := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	preview := func(out string, args ...string) (string, string, int) {
		return runCLI(t, append([]string{"mask", "preview", "--config", cfg, "--operator", "inst", "--password-file", pwFile(t), "--camera", "dp", "--out", out}, args...)...)
	}
	tamperTo(t, sim.Camera("dp"), camsim.Position{Pan: -0.5})
	off := filepath.Join(dir, "off.jpg")
	_, se, code := preview(off, "--preset", "1")
	if code == 0 || !strings.Contains(se, `camera "dp"`) || !strings.Contains(se, `off preset "1"`) || !strings.Contains(se, "pan -0.500") {
		t.Errorf("off the preset: exit %d %s", code, se)
	}
	if _, err := os.Stat(off); err == nil {
		t.Error("a preview off the preset was written")
	}
	es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "mask_preview"})
	if err != nil || len(es) != 1 || es[0].Outcome != "refused" || es[0].Actor != "inst" || !strings.Contains(es[0].Detail, `off preset "1"`) {
		t.Errorf("refusal not audited: %v %+v", err, es)
	}
	if _, se, code := preview(off, "--preset", "9"); code == 0 || !strings.Contains(se, `no approved view "9"`) {
		t.Errorf("unknown preset: exit %d %s", code, se)
	}
	tamperTo(t, sim.Camera("dp"), camsim.Position{})
	on := filepath.Join(dir, "on.jpg")
	if so, se, code := preview(on, "--preset", "1"); code != 0 {
		t.Fatalf("at the preset: exit %d %s %s", code, so, se)
	}
	checkFlat(t, on, boxes["dp/1"])
}

// G-4.3: outside a camera's active hours the preview refuses and the
// dossier takes no snapshot of it, saying why in a gap line.
func TestG43_PreviewAndDossierOutsideTheSchedule(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	rome, _ := time.LoadLocation("Europe/Rome")
	setScheduleNow(t, time.Date(2026, 12, 1, 12, 0, 0, 0, rome)) // a Tuesday: df is off
	out := filepath.Join(dir, "df.jpg")
	_, se, code := runCLI(t, "mask", "preview", "--config", cfg, "--operator", "inst", "--password-file", pwFile(t), "--camera", "df", "--out", out)
	if code == 0 || !strings.Contains(se, `camera "df" is outside its active hours (G-4.3)`) || !strings.Contains(se, "on again at 2026-12-05 00:00") {
		t.Errorf("preview: exit %d %s", code, se)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a preview outside the schedule was written")
	}
	const gap = `camera "df" fixed view: snapshot: not taken: camera "df" is outside its active hours (G-4.3) and is not read then; on again at 2026-12-05 00:00 CET`
	_, se, code = runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", filepath.Join(dir, "d.json"))
	if code == 0 || !strings.Contains(se, gap) {
		t.Errorf("dossier: exit %d %s", code, se)
	}
	so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", filepath.Join(dir, "d.json"), "--allow-gaps")
	if code != 0 || !strings.Contains(so, "2 masked snapshots, 1 gaps") {
		t.Errorf("dossier --allow-gaps: exit %d %s %s", code, so, se)
	}
	d := readDossier(t, filepath.Join(dir, "d.json"))
	if len(d.Gaps) != 1 || d.Gaps[0] != gap || d.Cameras[1].Views[0].Snapshot != nil {
		t.Errorf("gaps %q", d.Gaps)
	}
}

// G-3.3.1 a: an installer's dossier reads only the cameras assigned to
// them (the others are described from the config, not read, and are not
// gaps); an admin's reads every camera.
func TestG331_InstallerDossierOnlyTheirCameras(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	raw, _ := os.ReadFile(cfg)
	text := strings.Replace(string(raw), "roles: [installer], cameras: [dp, df]", "roles: [installer], cameras: [dp]", 1)
	text = strings.Replace(text, "roles: [admin], cameras: [dp, df]", "roles: [admin], cameras: [dp]", 1)
	if text == string(raw) {
		t.Fatal("test bug: operators not changed")
	}
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "inst.json")
	so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "inst", "--password-file", pwFile(t), "--out", out)
	if code != 0 || !strings.Contains(so, "2 masked snapshots, 0 gaps") {
		t.Fatalf("installer: exit %d %s %s", code, so, se)
	}
	d := readDossier(t, out)
	df := d.Cameras[1]
	if df.ID != "df" || df.Views[0].Snapshot != nil || df.Identity != nil || !strings.Contains(df.Views[0].SnapshotError, "not assigned to operator inst") {
		t.Errorf("df in the installer's dossier: %+v", df)
	}
	if d.Cameras[0].Views[0].Snapshot == nil || d.Cameras[0].Views[1].Snapshot == nil || !strings.Contains(d.Scope, "assigned to operator inst: dp") {
		t.Errorf("dp in the installer's dossier, scope %q", d.Scope)
	}
	if es, _ := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "dossier"}); len(es) != 1 || es[0].Fields["snapshots"] != "dp/1 dp/2" {
		t.Errorf("audit: %+v", es)
	}
	out = filepath.Join(dir, "boss.json")
	if so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out); code != 0 || !strings.Contains(so, "3 masked snapshots") {
		t.Fatalf("admin: exit %d %s %s", code, so, se)
	}
	if d := readDossier(t, out); d.Cameras[1].Views[0].Snapshot == nil || !strings.Contains(d.Scope, "every camera") {
		t.Errorf("the admin's dossier lacks df, scope %q", d.Scope)
	}
}

func readDossier(t *testing.T, path string) dossier.Dossier {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dossier.Dossier
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}
