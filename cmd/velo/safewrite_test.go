package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/masking/viewcheck"
	"velo/onvif/camsim"
)

// The commands below run as root and write where an operator says. A
// local user who can write that folder plants links at the target and at
// its old predictable temporary name (TARGET.tmp), both pointing at a
// file of root's: the file must stay as it was.

// rootFile is the file the attacker aims at (the tests run as root).
func rootFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte("root:ORIGINAL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// plantLinks links each of names to victim.
func plantLinks(t *testing.T, victim string, names ...string) {
	t.Helper()
	for _, n := range names {
		os.Remove(n)
		if err := os.Symlink(victim, n); err != nil {
			t.Fatal(err)
		}
	}
}

func victimUntouched(t *testing.T, victim string) {
	t.Helper()
	b, err := os.ReadFile(victim)
	st, serr := os.Lstat(victim)
	if err != nil || serr != nil || string(b) != "root:ORIGINAL\n" || st.Mode() != 0o600 {
		t.Errorf("the root-owned file was written through a link: %.60q %v, mode %v", b, err, st.Mode())
	}
}

// regularFile checks path is now a regular file of mode perm (the link
// replaced, not followed).
func regularFile(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != perm {
		t.Errorf("%s: %v, want a regular file of mode %v (%v)", path, st.Mode(), perm, err)
	}
}

// safeSite is testkit's site with a state folder beside it and an
// exporter.
func safeSite(t *testing.T) (cfg, dir string) {
	t.Helper()
	text := strings.Replace(testkit.SiteYAML, "gateway: gw-1\n", "gateway: gw-1\nstate_dir: state\n", 1)
	text = strings.Replace(text, "operators:\n", "operators:\n  - {name: exp, password_file: exp.pw, roles: [exporter, installer, recording-viewer], cameras: [cam1, cam2]}\n", 1)
	cfg = testkit.WriteSite(t, agentSite(t, text))
	dir = filepath.Dir(cfg)
	testkit.SecretFile(t, dir, "exp.pw", "exporter-secret-2\n")
	return cfg, dir
}

func TestPasswdOutNeverFollowsLinks(t *testing.T) {
	cfg, dir := safeSite(t)
	out := filepath.Join(dir, "ops.cred")
	for _, names := range [][]string{{out + ".tmp"}, {out, out + ".tmp"}} {
		victim := rootFile(t)
		plantLinks(t, victim, names...)
		_, se, code := runCLI(t, "passwd", "--config", cfg, "--operator", "ops", "--password-file", filepath.Join(dir, "exp.pw"), "--out", out)
		if code != 0 {
			t.Fatalf("passwd: %d %s", code, se)
		}
		victimUntouched(t, victim)
		regularFile(t, out, 0o600)
	}
}

// sealedSegment seals a small plaintext segment of cam1 into the site's
// store and returns its name.
func sealedSegment(t *testing.T, dir string) string {
	t.Helper()
	st, _, err := retention.Open(filepath.Join(dir, "rec"), filepath.Join(dir, "state"), retention.NewSystemClock())
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "rec", "cam1_20260101T100000Z.mkv")
	if err := os.WriteFile(plain, []byte("not really matroska"), 0o600); err != nil {
		t.Fatal(err)
	}
	seg, err := st.Seal(plain, "cam1", time.Now().Add(-10*time.Second), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return seg.Name
}

func TestRecordingExportNeverFollowsLinks(t *testing.T) {
	cfg, dir := safeSite(t)
	seg := sealedSegment(t, dir)
	startAgent(t, cfg)
	export := func(out string) (string, int) {
		_, se, code := runCLI(t, "recording", "export", "--config", cfg, "--operator", "exp", "--password-file", filepath.Join(dir, "exp.pw"),
			"--segment", seg, "--ref", "Proc. pen. 123/2026 R.G.N.R.", "--out", out)
		return se, code
	}
	// The sidecar's name is predictable: OUT.json.
	out := filepath.Join(dir, "export.mkv")
	victim := rootFile(t)
	plantLinks(t, victim, out+".json", out+".json.tmp")
	if se, code := export(out); code != 0 {
		t.Fatalf("export: %d %s", code, se)
	}
	victimUntouched(t, victim)
	regularFile(t, out, 0o600)
	regularFile(t, out+".json", 0o600)
	// A link at the export itself: refused (an export never replaces a
	// file), nothing written through it.
	out2 := filepath.Join(dir, "export2.mkv")
	plantLinks(t, victim, out2, out2+".tmp", out2+".json")
	if se, code := export(out2); code == 0 || !strings.Contains(se, "exists") {
		t.Errorf("export over a link: %d %s", code, se)
	}
	victimUntouched(t, victim)
	// recording view writes the same way.
	view := filepath.Join(dir, "view.mkv")
	plantLinks(t, victim, view, view+".tmp")
	_, se, code := runCLI(t, "recording", "view", "--config", cfg, "--operator", "exp", "--password-file", filepath.Join(dir, "exp.pw"),
		"--segment", seg, "--reason", "police-request", "--ref", "x", "--out", view)
	if code == 0 || !strings.Contains(se, "exists") {
		t.Errorf("view over a link: %d %s", code, se)
	}
	victimUntouched(t, victim)
	// The same running agent (one start: test time) writes the state.
	t.Run("state dir", func(t *testing.T) { stateDirLinksNeverFollowed(t, cfg, dir, seg) })
}

// The dossier of a site whose cameras do not answer (--allow-gaps): it
// is still written, and never through a link.
func TestDossierOutNeverFollowsLinks(t *testing.T) {
	cfg, dir := safeSite(t)
	text, _ := os.ReadFile(cfg)
	// No camera answers: a closed port on loopback.
	closed := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	os.WriteFile(cfg, []byte(strings.NewReplacer("127.0.0.1:8080", closed, "127.0.0.2:8080", closed,
		"  controller: Test S.r.l.\n", "  controller: Test S.r.l.\n  contact: privacy@test.example\n  legal_basis: legitimate interest\n  recipients: [staff]\n").Replace(string(text))), 0o600)
	for _, ext := range []string{".json", ".pdf"} {
		out := filepath.Join(dir, "dossier"+ext)
		victim := rootFile(t)
		plantLinks(t, victim, out, out+".tmp")
		_, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "exp", "--password-file", filepath.Join(dir, "exp.pw"),
			"--no-move", "--allow-gaps", "--timeout", "3s", "--out", out)
		if code != 0 {
			t.Fatalf("dossier: %d %s", code, se)
		}
		victimUntouched(t, victim)
		regularFile(t, out, 0o640)
	}
	out := filepath.Join(dir, "sign.pdf")
	victim := rootFile(t)
	plantLinks(t, victim, out, out+".tmp")
	if _, se, code := runCLI(t, "sign", "--config", cfg, "--camera", "cam2", "--out", out); code != 0 {
		t.Fatalf("sign: %d %s", code, se)
	}
	victimUntouched(t, victim)
	regularFile(t, out, 0o640)
}

func TestMaskPreviewOutNeverFollowsLinks(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "pl", Address: "127.0.98.12", Username: "op", Password: pw, Scene: "badge", FPS: 10, Width: 320, Height: 180})
	dir := t.TempDir()
	masks := filepath.Join(dir, "masks.yaml")
	yml := "camera: pl\nsets:\n  - preset: \"\"\n    masks:\n      - name: all\n        polygon: [{x: 0, y: 0}, {x: 1, y: 0}, {x: 1, y: 1}]\n"
	if err := os.WriteFile(masks, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "preview.jpg")
	victim := rootFile(t)
	plantLinks(t, victim, out, out+".tmp")
	so, se, code := runCLI(t, "mask", "preview", "--stream", sim.Camera("pl").RTSPURL("main"), "--user", "op", "--password-file", pwFile(t), "--masks", masks, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	victimUntouched(t, victim)
	regularFile(t, out, 0o640)
}

// The service account owns state_dir; the agent writes there at velo
// recording's request (the holds, the audit log), and may run as root.
// Links planted at those names must not turn its writes against root's
// files. (Run by TestRecordingExportNeverFollowsLinks, on its agent.)
func stateDirLinksNeverFollowed(t *testing.T, cfg, dir, seg string) {
	state := filepath.Join(dir, "state")
	cli := func(args ...string) (string, int) {
		base := []string{"recording", args[0], "--config", cfg, "--operator", "exp", "--password-file", filepath.Join(dir, "exp.pw")}
		_, se, code := runCLI(t, append(base, args[1:]...)...)
		return se, code
	}
	if se, code := cli("list"); code != 0 {
		t.Fatalf("list: %d %s", code, se)
	}
	victim := rootFile(t)
	plantLinks(t, victim, filepath.Join(state, "retention.json.tmp"), filepath.Join(state, "holds.json.tmp"))
	if se, code := cli("hold", "--segment", seg, "--ref", "Proc. pen. 123/2026 R.G.N.R."); code != 0 {
		t.Fatalf("hold: %d %s", code, se)
	}
	victimUntouched(t, victim)
	// The audit log's newest file and its lock, replaced by links: the
	// command fails (nothing is done unaudited), the file is untouched.
	files, _ := filepath.Glob(filepath.Join(state, "audit", "audit-*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no audit file")
	}
	for _, name := range []string{files[len(files)-1], filepath.Join(state, "audit", ".lock")} {
		saved := name + ".saved"
		mustRename(t, name, saved)
		plantLinks(t, victim, name)
		if se, code := cli("list"); code == 0 {
			t.Errorf("list with %s a link: succeeded: %s", filepath.Base(name), se)
		}
		victimUntouched(t, victim)
		os.Remove(name)
		mustRename(t, saved, name)
	}
	// A dangling link is not created through either.
	nologin := filepath.Join(t.TempDir(), "nologin")
	plantLinks(t, nologin, filepath.Join(state, ".holds.lock"))
	cli("release", "--segment", seg)
	if _, err := os.Lstat(nologin); err == nil {
		t.Error("a file was created through a dangling link")
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// velo view capture as root writes a reference into the service
// account's state directory and gives it that owner. The service account
// turns the camera's folder into a link to a folder of root's: nothing is
// written or chowned there; a link at the file itself is replaced.
func TestViewReferenceOwnedThroughDescriptors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	refs, _ := filepath.Glob("../../deploy/demo/references/*/*.ref")
	if len(refs) == 0 {
		t.Fatal("no demo reference")
	}
	ref, err := viewcheck.Load(refs[0])
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(filepath.Join(state, "references", "cam1"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{state, filepath.Join(state, "references"), filepath.Join(state, "references", "cam1")} {
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	victim := rootFile(t)
	path := filepath.Join(state, "references", "cam1", "fixed.day.ref")
	plantLinks(t, victim, path)
	if err := saveReference(ref, state, path); err != nil {
		t.Fatal(err)
	}
	victimUntouched(t, victim)
	regularFile(t, path, 0o644)
	if st, err := os.Stat(path); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("reference not given the state directory's owner: %v", err)
	}
	rootDir := t.TempDir()
	plantLinks(t, rootDir, filepath.Join(state, "references", "cam2"))
	if err := saveReference(ref, state, filepath.Join(state, "references", "cam2", "fixed.day.ref")); err == nil {
		t.Error("saved through a linked folder")
	}
	if m, _ := os.ReadDir(rootDir); len(m) != 0 {
		t.Errorf("written into root's folder through a link: %v", m)
	}
	if st, _ := os.Stat(rootDir); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("root's folder chowned through a link")
	}
}
