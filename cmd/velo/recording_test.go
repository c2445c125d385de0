package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/onvif/camsim"
)

// A real `velo run` records a masked camera; segments are sealed at rest;
// operators list, view, export, hold and release them with the rules of
// ER-4.4/4.5/4.6 and G-3.3.1; live views and refusals are audited; the
// audit log verifies; after a stop no plaintext stays on disk.
func TestRecordingLifecycle(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "rc", Address: "127.0.98.21", Username: "op", Password: pw, Serial: "SN-RC",
		Scene: "badge", FPS: 10, Width: 640, Height: 360})
	b := camsim.Regions(sim.Camera("rc").Config(), camsim.Position{})[camsim.RegionBadgeReader]
	dir := t.TempDir()
	secrets := map[string]string{"cam.pw": pw, "viewer.pw": "viewer-secret-1", "exp.pw": "exporter-secret-2", "maint.pw": "maint-secret-3", "live.pw": "live-secret-4"}
	for n, s := range secrets {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	brokerAddr, rtsp := freeAddr(t), freeAddr(t)
	site := fmt.Sprintf(`site: {id: s, name: Shop, controller: Shop Srl, purposes: [theft prevention],
  contact: privacy@shop.example, legal_basis: legitimate interest, recipients: [police on request], dpo: dpo@shop.example}
gateway: g
state_dir: state
broker: {embedded_listen: "%s"}
outputs: {rtsp_listen: "%s", record_dir: rec, recording_socket: rec.sock}
operators:
  - {name: viewer, password_file: viewer.cred, roles: [recording-viewer], cameras: [rc]}
  - {name: exp, password_file: exp.pw, roles: [exporter], cameras: [rc]}
  - {name: maint, password_file: maint.pw, roles: [ptz-maintainer], cameras: [rc]}
  - {name: live, password_file: live.cred, roles: [live-viewer], cameras: [rc]}
cameras:
  - id: rc
    purpose: corridor
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-RC}
    xaddr: %s
    username: op
    password_file: cam.pw
    record: {enabled: true, segment: 10s}
    masks:
      - name: badge reader
        polygon: [{x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}, {x: %g, y: %g}]
`, brokerAddr, rtsp, sim.Camera("rc").XAddr(), b.X0-0.01, b.Y0-0.01, b.X1+0.01, b.Y0-0.01, b.X1+0.01, b.Y1+0.01, b.X0-0.01, b.Y1+0.01)
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	// The viewer's and the live viewer's gateway credentials are slow
	// hashes written by velo passwd (the others stay plaintext: warned).
	for _, op := range []string{"viewer", "live"} {
		cred := filepath.Join(dir, op+".cred")
		if so, se, code := runCLI(t, "passwd", "--config", cfgPath, "--operator", op, "--password-file", filepath.Join(dir, op+".pw"), "--out", cred); code != 0 || !strings.Contains(se, "RTSP stream password") {
			t.Fatalf("passwd %s: %d %s %s", op, code, so, se)
		}
		b, _ := os.ReadFile(cred)
		if st, err := os.Stat(cred); err != nil || st.Mode().Perm() != 0o600 || strings.Contains(string(b), secrets[op+".pw"]) || !strings.HasPrefix(string(b), "$velo2$s$"+op+"$") {
			t.Fatalf("credential file %s: %v %q", op, err, b)
		}
	}
	if es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "credential_set"}); err != nil || len(es) != 2 || es[0].Fields["operator"] != "viewer" || !strings.HasPrefix(es[0].Actor, "local:") {
		t.Errorf("credential changes not audited: %v %+v", err, es)
	}
	if so, se, code := runCLI(t, "config", "check", cfgPath); code != 0 || !strings.Contains(so, "2 warnings") || !strings.Contains(se, `operator "exp"`) || strings.Contains(se, `operator "viewer"`) {
		t.Errorf("config check: %d %s %s", code, so, se)
	}
	// The gateway's hashed copy is not a password for the CLI.
	if _, se, code := runCLI(t, "recording", "list", "--config", cfgPath, "--operator", "viewer", "--password-file", filepath.Join(dir, "viewer.cred")); code == 0 || !strings.Contains(se, "hashed credential") {
		t.Errorf("cred file as a password: %d %s", code, se)
	}
	cmd := exec.Command(os.Args[0], "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "VELO_CLI_CHILD=1")
	var logs lockedBuf
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	defer stop()
	rec := filepath.Join(dir, "rec")
	var sealed []string
	for deadline := time.Now().Add(60 * time.Second); len(sealed) == 0; time.Sleep(250 * time.Millisecond) {
		sealed, _ = filepath.Glob(filepath.Join(rec, "*.vseg"))
		if time.Now().After(deadline) {
			so, se, _ := runCLI(t, "probe", "--xaddr", sim.Camera("rc").XAddr(), "--user", "op", "--password-file", filepath.Join(dir, "cam.pw"))
			o, _ := exec.Command("ffprobe", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://live:%s@%s/rc", access.StreamPassword("s", "live", secrets["live.pw"], 1), rtsp)).CombinedOutput()
			ls, _ := exec.Command("ls", "-la", rec, filepath.Join(dir, "state")).CombinedOutput()
			t.Fatalf("no sealed segment after 60 s; log:\n%s\nprobe %s %s\nffprobe: %s\nls: %s", logs.String(), so, se, o, ls)
		}
	}
	if plain, _ := filepath.Glob(filepath.Join(rec, "*.mkv")); len(plain) > 1 {
		t.Errorf("%d plaintext segments at rest (only the one being written may be): %v", len(plain), plain)
	}
	seg := filepath.Base(sealed[0])
	cli := func(op string, args ...string) (string, string, int) {
		base := []string{"recording", args[0], "--config", cfgPath, "--operator", op, "--password-file", filepath.Join(dir, op+".pw")}
		return runCLI(t, append(base, args[1:]...)...)
	}
	// list: viewer yes, maintainer no (G-3.3.1 d).
	if so, se, code := cli("viewer", "list"); code != 0 || !strings.Contains(so, seg) {
		t.Fatalf("list as viewer: %d %s %s", code, so, se)
	}
	if _, se, code := cli("maint", "list"); code != 1 || !strings.Contains(se, "no role allowed") {
		t.Errorf("list as maintainer: %d %s", code, se)
	}
	// A wrong password is refused.
	os.WriteFile(filepath.Join(dir, "bad.pw"), []byte("nope\n"), 0o600)
	if _, se, code := runCLI(t, "recording", "list", "--config", cfgPath, "--operator", "viewer", "--password-file", filepath.Join(dir, "bad.pw")); code != 1 || !strings.Contains(se, "authentication failed") {
		t.Errorf("wrong password: %d %s", code, se)
	}
	// view: ER-4.4 reason and reference required.
	out := filepath.Join(dir, "view.mkv")
	if _, se, code := cli("viewer", "view", "--segment", seg, "--reason", "curiosity", "--ref", "x", "--out", out); code != 1 || !strings.Contains(se, "ER-4.4") {
		t.Errorf("view for no valid reason: %d %s", code, se)
	}
	if _, se, code := cli("viewer", "view", "--segment", seg, "--reason", "police-request", "--out", out); code != 1 || !strings.Contains(se, "reference") {
		t.Errorf("view without a reference: %d %s", code, se)
	}
	if so, se, code := cli("viewer", "view", "--segment", seg, "--reason", "police-request", "--ref", "Carabinieri prot. 55/2026", "--out", out); code != 0 {
		t.Fatalf("view: %d %s %s", code, so, se)
	}
	// The recording carries the masks: a frame of it has the badge reader flat.
	frame := filepath.Join(dir, "frame.jpg")
	if o, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", out, "-frames:v", "1", frame).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg cannot decode the viewed segment: %v %s", err, o)
	}
	checkFlat(t, frame, b)
	// export: the viewer may not copy; the exporter only with a judicial reference.
	exp := filepath.Join(dir, "export.mkv")
	if _, se, code := cli("viewer", "export", "--segment", seg, "--ref", "R.G. 1/2026", "--out", exp); code != 1 || !strings.Contains(se, "no role allowed") {
		t.Errorf("export as viewer: %d %s", code, se)
	}
	if _, se, code := cli("exp", "export", "--segment", seg, "--out", exp); code != 1 || !strings.Contains(se, "judicial") {
		t.Errorf("export without a reference: %d %s", code, se)
	}
	if so, se, code := cli("exp", "export", "--segment", seg, "--ref", "Proc. pen. 123/2026 R.G.N.R.", "--out", exp); code != 0 {
		t.Fatalf("export: %d %s %s", code, so, se)
	}
	data, _ := os.ReadFile(exp)
	var side ExportSidecar
	sb, _ := os.ReadFile(exp + ".json")
	if err := json.Unmarshal(sb, &side); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if side.SHA256 != hex.EncodeToString(sum[:]) || side.JudicialRef != "Proc. pen. 123/2026 R.G.N.R." || !side.Masked || side.Camera != "rc" || side.AuditSeq == 0 {
		t.Errorf("sidecar %+v", side)
	}
	if st, _ := os.Stat(exp); st.Mode().Perm() != 0o600 {
		t.Errorf("export mode %v", st.Mode().Perm())
	}
	// hold and release (ER-4.5).
	if so, se, code := cli("exp", "hold", "--segment", seg, "--ref", "Proc. pen. 123/2026 R.G.N.R."); code != 0 {
		t.Fatalf("hold: %d %s %s", code, so, se)
	}
	if so, _, _ := cli("viewer", "list"); !strings.Contains(so, "HELD Proc. pen. 123/2026") {
		t.Errorf("list does not show the hold:\n%s", so)
	}
	if _, se, code := cli("viewer", "release", "--segment", seg); code != 1 {
		t.Errorf("release as viewer: %d %s", code, se)
	}
	if so, se, code := cli("exp", "release", "--segment", seg); code != 0 {
		t.Fatalf("release: %d %s %s", code, so, se)
	}
	// Live view: allowed for the live viewer (audited), refused for the
	// maintainer (G-3.3.1 d; audited and published).
	read := func(user, pass string, generation int) error {
		u := fmt.Sprintf("rtsp://%s:%s@%s/rc", user, access.StreamPassword("s", user, pass, generation), rtsp)
		return exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", u, "-frames:v", "1", "-f", "null", "-").Run()
	}
	if err := read("live", secrets["live.pw"], 1); err != nil {
		t.Errorf("live view as live-viewer: %v", err)
	}
	if err := read("maint", secrets["maint.pw"], access.LegacyStreamGeneration); err == nil {
		t.Error("the maintainer could view video")
	}
	// A stream password past its expiry: once the line is in force
	// (reload), the relay refuses the player that still has it, and the
	// live view it had open is cut (G-3.3.1 a: revocation takes effect).
	watching := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i",
		fmt.Sprintf("rtsp://live:%s@%s/rc", access.StreamPassword("s", "live", secrets["live.pw"], 1), rtsp), "-t", "120", "-progress", "pipe:1", "-f", "null", "-")
	progress, _ := watching.StdoutPipe()
	if err := watching.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watching.Process.Kill() }()
	decoding := make(chan struct{})
	watchEnded := make(chan struct{})
	go func() {
		sc, told := bufio.NewScanner(progress), false
		for sc.Scan() { // "frame=N" lines once frames are decoded
			if f, ok := strings.CutPrefix(sc.Text(), "frame="); ok && f != "0" && !told {
				close(decoding)
				told = true
			}
		}
		_ = watching.Wait()
		close(watchEnded)
	}()
	select {
	case <-decoding:
	case <-time.After(20 * time.Second):
		t.Fatal("the live viewer decodes nothing")
	}
	select {
	case <-watchEnded:
		t.Fatal("the open live view ended before its revocation")
	default:
	}
	expired := access.HashCredential("s", "live", secrets["live.pw"], 1, time.Now().Add(-time.Minute))
	if err := os.WriteFile(filepath.Join(dir, "live.cred"), []byte(expired+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "SIGHUP: config applied"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload in the log:\n%s", logs.String())
		}
	}
	select {
	case <-watchEnded:
	case <-time.After(10 * time.Second):
		t.Error("the live view opened before the reload still runs 10 s after its stream password expired")
	}
	u := fmt.Sprintf("rtsp://live:%s@%s/rc", access.StreamPassword("s", "live", secrets["live.pw"], 1), rtsp)
	ffOut, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", u, "-frames:v", "1", "-f", "null", "-").CombinedOutput()
	if err == nil {
		t.Error("an expired stream password read live video")
	}
	t.Logf("expired stream password: ffmpeg %v: %s", err, strings.TrimSpace(strings.ReplaceAll(string(ffOut), access.StreamPassword("s", "live", secrets["live.pw"], 1), "<stream password>")))
	stop()
	if plain, _ := filepath.Glob(filepath.Join(rec, "*.mkv")); len(plain) != 0 {
		t.Errorf("plaintext left after a clean stop: %v", plain)
	}
	// The audit log: intact, and it has every access with its reason and
	// every refusal.
	adir := filepath.Join(dir, "state", "audit")
	so, se, code := runCLI(t, "audit", "verify", "--dir", adir)
	if code != 0 || !strings.HasPrefix(so, "OK") {
		t.Fatalf("audit verify: %d %s %s", code, so, se)
	}
	so, _, _ = runCLI(t, "audit", "show", "--dir", adir, "--json")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(so), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{e.Actor, e.Action, e.Outcome, e.Reason}, "/"))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"viewer/recording_list/ok/", "maint/recording_list/refused/", "viewer/recording_list/refused/",
		"viewer/recording_access/refused/curiosity", "viewer/recording_access/ok/police-request", "viewer/export/refused/",
		"exp/export/refused/", "exp/export/ok/", "exp/hold_set/ok/", "viewer/hold_released/refused/", "exp/hold_released/ok/",
		"live/live_view/ok/", "maint/access_denied/refused/"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit log has no %s", want)
		}
	}
	if t.Failed() {
		t.Logf("audit:\n%s", all)
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) || strings.Contains(so, s) {
			t.Error("a secret in the logs or the audit log")
		}
	}
}
