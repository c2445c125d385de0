package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"velo/agent/audit"
	"velo/onvif/camsim"
)

func TestMaskPreview(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "pv", Address: "127.0.98.10", Username: "op", Password: pw, Scene: "badge", FPS: 10, Width: 640, Height: 360})
	cc := sim.Camera("pv").Config()
	b := camsim.Regions(cc, camsim.Position{})[camsim.RegionBadgeReader]
	dir := t.TempDir()
	masks := filepath.Join(dir, "masks.yaml")
	yml := fmt.Sprintf("camera: pv\nsets:\n  - preset: \"\"\n    masks:\n      - name: badge reader\n        polygon: [{x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}]\n",
		b.X0-0.01, b.Y0-0.01, b.X1+0.01, b.Y0-0.01, b.X1+0.01, b.Y1+0.01, b.X0-0.01, b.Y1+0.01)
	if err := os.WriteFile(masks, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "preview.jpg")
	stream := sim.Camera("pv").RTSPURL("main")
	so, se, code := runCLI(t, "mask", "preview", "--stream", stream, "--user", "op", "--password-file", pwFile(t), "--masks", masks, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	checkFlat(t, out, b)
	// A preset without a mask set: nothing is written.
	out2 := filepath.Join(dir, "none.jpg")
	_, se, code = runCLI(t, "mask", "preview", "--stream", stream, "--user", "op", "--password-file", pwFile(t), "--masks", masks, "--preset", "7", "--out", out2)
	if code == 0 || !strings.Contains(se, "no_mask_set") {
		t.Errorf("exit %d, %s", code, se)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("an unmasked preview was written")
	}
	// A broken mask file is refused with its name.
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("camera: pv\nsets:\n  - masks:\n      - name: m\n        polygon: [{x: 0, y: 0}, {x: 1.5, y: 0}, {x: 0, y: 1}]\n"), 0o600)
	_, se, code = runCLI(t, "mask", "preview", "--stream", stream, "--masks", bad, "--out", out2)
	if code == 0 || !strings.Contains(se, "bad.yaml") || !strings.Contains(se, "outside [0,1]") {
		t.Errorf("exit %d, %s", code, se)
	}
}

// --config/--camera takes the stream, credentials and masks from the site
// config, as an installer on site would.
func TestMaskPreviewFromSiteConfig(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "sc", Address: "127.0.98.11", Username: "op", Password: pw, Serial: "SN-SC",
		Scene: "badge", FPS: 10, Width: 640, Height: 360})
	b := camsim.Regions(sim.Camera("sc").Config(), camsim.Position{})[camsim.RegionBadgeReader]
	dir := t.TempDir()
	site := fmt.Sprintf(`site: {id: s, name: S, controller: C, purposes: [p]}
gateway: g
state_dir: state
operators:
  - {name: inst, password_file: inst.pw, roles: [installer], cameras: [sc]}
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [sc]}
cameras:
  - id: sc
    purpose: corridor
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-SC}
    xaddr: %s
    username: op
    password_file: cam.pw
    masks:
      - name: badge reader
        polygon: [{x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}]
`, sim.Camera("sc").XAddr(), b.X0-0.01, b.Y0-0.01, b.X1+0.01, b.Y0-0.01, b.X1+0.01, b.Y1+0.01, b.X0-0.01, b.Y1+0.01)
	for _, f := range []string{"cam.pw", "inst.pw", "ops.pw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p.jpg")
	preview := func(op string, args ...string) (string, string, int) {
		return runCLI(t, append([]string{"mask", "preview", "--config", filepath.Join(dir, "site.yaml"), "--operator", op, "--password-file", pwFile(t)}, args...)...)
	}
	so, se, code := preview("inst", "--camera", "sc", "--out", out)
	if code != 0 || !strings.Contains(so, `camera "sc"`) {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	checkFlat(t, out, b)
	// Audited with the JPEG's hash; a live viewer is refused (and audited),
	// and an operator is required.
	jpg, _ := os.ReadFile(out)
	sum := sha256.Sum256(jpg)
	if es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "mask_preview"}); err != nil || len(es) != 1 || es[0].Actor != "inst" || es[0].Camera != "sc" || es[0].Fields["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("audit: %v %+v", err, es)
	}
	if _, se, code := preview("ops", "--camera", "sc", "--out", filepath.Join(dir, "ops.jpg")); code != 1 || !strings.Contains(se, "refused") {
		t.Errorf("live viewer: exit %d %s", code, se)
	}
	if _, se, code := runCLI(t, "mask", "preview", "--config", filepath.Join(dir, "site.yaml"), "--camera", "sc", "--out", out); code != 2 || !strings.Contains(se, "--operator") {
		t.Errorf("no operator: exit %d %s", code, se)
	}
	// A device whose serial is not the configured one is never previewed.
	bad := strings.Replace(site, "SN-SC", "SN-OTHER", 1)
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "wrong.jpg")
	_, se, code = preview("inst", "--camera", "sc", "--out", out2)
	if code == 0 || !strings.Contains(se, "serial") {
		t.Errorf("wrong serial: exit %d %s", code, se)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("a preview of the wrong device was written")
	}
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	_, se, code = preview("inst", "--camera", "nope", "--out", out)
	if code == 0 || !strings.Contains(se, `no camera "nope"`) {
		t.Errorf("unknown camera: exit %d %s", code, se)
	}
	// A view the config approves without masks is previewed as velo run
	// streams it, and the output says it has no masks.
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site[:strings.Index(site, "    masks:\n")]), 0o600); err != nil {
		t.Fatal(err)
	}
	so, se, code = preview("inst", "--camera", "sc", "--out", out)
	if code != 0 || !strings.Contains(so, `approves this view of camera "sc" without masks`) {
		t.Errorf("view without masks: exit %d %s %s", code, so, se)
	}
}

// checkFlat decodes the preview and checks the badge reader region carries
// no scene detail (the marker checkerboard is gone).
func checkFlat(t *testing.T, path string, b camsim.NormRect) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(fh)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	var sum, sq, n float64
	for y := int(b.Y0*float64(h)) + 2; y < int(b.Y1*float64(h))-2; y++ {
		for x := int(b.X0*float64(w)) + 2; x < int(b.X1*float64(w))-2; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			v := float64(r >> 8)
			sum, sq, n = sum+v, sq+v*v, n+1
		}
	}
	if n == 0 {
		t.Fatal("empty region")
	}
	if sd := math.Sqrt(max(sq/n-(sum/n)*(sum/n), 0)); sd > 3 {
		t.Errorf("badge reader in the preview has stddev %.1f", sd)
	}
}

func TestMaskSelftestCLI(t *testing.T) {
	so, se, code := runCLI(t, "mask", "selftest", "--json", "--config", demoCopy(t))
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	var rep struct {
		OK     bool   `json:"ok"`
		OpenCV string `json:"opencv"`
		Failed int    `json:"failed"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(so), &rep); err != nil {
		t.Fatalf("%v: %s", err, so)
	}
	site, codecs := 0, false
	for _, c := range rep.Checks {
		if strings.HasPrefix(c.Name, "badge-corridor") || strings.HasPrefix(c.Name, "ptz-entrance") {
			site++
		}
		codecs = codecs || c.Name == "codecs: H264 would use" && c.OK
	}
	if !codecs {
		t.Error("the selftest does not say which H.264 codec elements it would use")
	}
	if !rep.OK || rep.Failed != 0 || !strings.HasPrefix(rep.OpenCV, "4.") || site == 0 {
		t.Errorf("report: ok %v, failed %d, opencv %q, %d site checks", rep.OK, rep.Failed, rep.OpenCV, site)
	}
	// A bad size is a failure (exit 1), not a silent pass.
	if _, _, code := runCLI(t, "mask", "selftest", "--width", "641"); code != 1 {
		t.Errorf("odd width: exit %d", code)
	}
}

// demoCopy copies the demo config and its password files into a temporary
// folder with mode 0600 (a git checkout leaves them 0644, which the config
// loader rightly refuses).
func demoCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob("../../deploy/demo/*.password")
	creds, _ := filepath.Glob("../../deploy/demo/*.cred")
	for _, f := range append(append(files, creds...), "../../deploy/demo/site.yaml") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "site.yaml")
}
