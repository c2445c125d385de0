package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/agent/audit"
	"velo/agent/recserve"
	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/masking/anonymise/spec"
)

// G-3.5 through the real velo run and velo recording: vtest.avi frames
// 200..289 (real footage, people labelled by hand) sealed as a recorded
// segment; the exporter asks for a data subject's copy with a box on the
// subject. The MP4 decoded by ffmpeg: every other labelled person covered
// ≥ 90 % on ≥ 0.95 of their boxes, the subject mostly visible where
// tracked; the sidecar lists the masking; the copy is audited with the
// request reference (started, then ok). A recording viewer, and an
// exporter without the reference, are refused and audited.
func TestG35_SubjectCopyCLI(t *testing.T) {
	dir := t.TempDir()
	site := fmt.Sprintf(`site: {id: m, name: M, controller: C, purposes: [p], contact: c@example.org}
gateway: g
state_dir: state
broker: {embedded_listen: "%s"}
outputs: {record_dir: rec, rtsp_listen: "%s", recording_socket: rec.sock}
operators:
  - {name: dsr, password_file: dsr.pw, roles: [exporter], cameras: [mc]}
  - {name: viewer, password_file: viewer.pw, roles: [recording-viewer], cameras: [mc]}
cameras:
  - id: mc
    purpose: p
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-MC}
    xaddr: http://127.0.0.1:9/onvif/device_service
    record: {enabled: true}
    dynamic:
      purpose: traffic
      detectors: [motion]
      dynamic_zone: [{x: 0, y: 0}, {x: 1, y: 0}, {x: 1, y: 1}, {x: 0, y: 1}]
      style: fill
      color: "#FF00FF"
      detect_width: %d
`, freeAddr(t), freeAddr(t), testkit.SubjectW)
	for name, s := range map[string]string{"site.yaml": site, "dsr.pw": pw + "\n", "viewer.pw": pw + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	store, _, err := retention.Open(filepath.Join(dir, "rec"), filepath.Join(dir, "state"), retention.NewSystemClock())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	plain := filepath.Join(dir, "rec", "mc_"+start.Format("20060102T150405Z")+".mkv")
	testkit.SubjectClip(t, plain)
	if _, err := store.Seal(plain, "mc", start, 9*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "site.yaml")
	startAgent(t, cfg)
	out := filepath.Join(dir, "copy.mp4")
	export := func(op, ref string) (string, string, int) {
		return runCLI(t, "recording", "export", "--config", cfg, "--operator", op, "--password-file", pwFile(t), "--subject", "--camera", "mc",
			"--from", start.Format(time.RFC3339), "--to", start.Add(9*time.Second).Format(time.RFC3339), "--mark", testkit.SubjectMark(), "--ref", ref, "--out", out)
	}
	for _, c := range []struct{ op, ref, want string }{
		{"viewer", "DSR-2026-7", "refused"},
		{"dsr", "", "request reference is required"},
	} {
		if so, se, code := export(c.op, c.ref); code == 0 || !strings.Contains(se, c.want) {
			t.Errorf("%s, ref %q: exit %d, %s%s (want %q)", c.op, c.ref, code, so, se, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s, ref %q: a copy was written", c.op, c.ref)
		}
	}
	t0 := time.Now()
	so, se, code := export("dsr", "DSR-2026-7")
	took := time.Since(t0)
	if code != 0 {
		t.Fatalf("export --subject: exit %d: %s%s", code, so, se)
	}
	checkSubjectCopyFiles(t, out, took)
	checkSubjectAudit(t, filepath.Join(dir, "state", "audit"))
}

// checkSubjectCopyFiles scores the MP4 on the labels and checks the
// sidecar against it.
func checkSubjectCopyFiles(t *testing.T, out string, took time.Duration) {
	t.Helper()
	mp4, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var side recserve.SubjectSidecar
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(mp4)
	m := side.Masking
	if side.SHA256 != hex.EncodeToString(sum[:]) || side.RequestRef != "DSR-2026-7" || side.Reason != "data-subject-request" || side.Operator != "dsr" ||
		side.Camera != "mc" || len(side.Segments) != 1 || m.Frames != testkit.SubjectClipFrames || len(m.PerFrame) != m.Frames || m.Style != "fill" {
		t.Errorf("sidecar: %+v", side)
	}
	sc := testkit.ScoreSubjectCopy(t, mp4)
	masked, visible := 0, 0
	for _, pf := range m.PerFrame {
		masked += len(pf.Masked)
	}
	for _, v := range sc.Visible {
		if v >= 0.7 {
			visible++
		}
	}
	t.Logf("copy of %d frames in %v (%.1f frames/s, CLI to file); tracked %d, uncertain %d, whole %d; others covered %.3f (%d of %d); subject ≥ 70%% visible on %d of %d labelled frames %.2f; detectors %v",
		m.Frames, took, float64(m.Frames)/took.Seconds(), m.Tracked, len(m.Uncertain), len(m.WholeFrame), sc.Coverage(), sc.Covered, sc.People, visible, len(sc.Visible), sc.Visible, m.Detectors)
	if sc.People < 40 || sc.Coverage() < 0.95 {
		t.Errorf("third parties covered %.3f of %d < 0.95; missed %v", sc.Coverage(), sc.People, sc.Missed)
	}
	if len(sc.Visible) != 9 || visible < 8 || m.Tracked < m.Frames*3/4 || masked < m.Frames {
		t.Errorf("subject visible on %d of %d labelled frames, tracked on %d of %d frames; %d boxes masked", visible, len(sc.Visible), m.Tracked, m.Frames, masked)
	}
	if m.Tracked+len(m.Uncertain)+len(m.WholeFrame) != m.Frames {
		t.Errorf("frames by state do not add up: %d + %d + %d != %d", m.Tracked, len(m.Uncertain), len(m.WholeFrame), m.Frames)
	}
	for _, pf := range m.PerFrame {
		if pf.State == spec.SubjectTracked && pf.Subject == nil {
			t.Fatalf("frame %d tracked without the subject's box", pf.N)
		}
	}
}

// checkSubjectAudit: the two refusals, then started and ok with the
// request's reference and the copy's SHA-256.
func checkSubjectAudit(t *testing.T, adir string) {
	t.Helper()
	es, err := audit.Show(adir, audit.Filter{Action: "export"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+":"+e.Outcome+":"+e.Ref)
	}
	want := "viewer:refused:DSR-2026-7 dsr:refused: dsr:started:DSR-2026-7 dsr:ok:DSR-2026-7"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit: %q, want %q", strings.Join(got, " "), want)
	}
	last := es[len(es)-1]
	if last.Reason != "data-subject-request" || last.Camera != "mc" || last.Fields["sha256"] == "" || last.Fields["kind"] != "data-subject-copy" || last.Fields["peer_uid"] == "" {
		t.Errorf("ok entry: %+v", last)
	}
}
