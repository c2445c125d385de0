package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"velo/agent/audit"
	"velo/agent/dossier"
	"velo/agent/telemetry"
	"velo/onvif/camsim"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// dossierSite starts a PTZ camera (two approved presets, the badge reader
// masked in each) and a fixed one (police link, recorded 72 h), and writes
// the site config with an admin, an installer and a live viewer.
func dossierSite(t *testing.T) (dir string, sim *camsim.Sim, boxes map[string]camsim.NormRect) {
	t.Helper()
	sim = camsim.StartForTest(t,
		camsim.CameraConfig{ID: "dp", Address: "127.0.98.40", Username: "op", Password: pw, Serial: "SN-DP", Manufacturer: "Acme", Model: "PTZ-9", Firmware: "3.1.4",
			Scene: "ptz", FPS: 10, Width: 640, Height: 360, PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{
				{Token: "1", Name: "home"}, {Token: "2", Name: "door", Pan: 0.15, Tilt: 0.1, Zoom: 0.5}}}},
		camsim.CameraConfig{ID: "df", Address: "127.0.98.41", Username: "op", Password: pw, Serial: "SN-DF", Manufacturer: "Acme", Model: "FIX-4", Firmware: "1.0.2",
			Scene: "badge", FPS: 10, Width: 640, Height: 360})
	boxes = map[string]camsim.NormRect{
		"dp/1": camsim.Regions(sim.Camera("dp").Config(), camsim.Position{})[camsim.RegionBadgeReader],
		"dp/2": camsim.Regions(sim.Camera("dp").Config(), camsim.Position{Pan: 0.15, Tilt: 0.1, Zoom: 0.5})[camsim.RegionBadgeReader],
		"df/":  camsim.Regions(sim.Camera("df").Config(), camsim.Position{})[camsim.RegionBadgeReader],
	}
	poly := func(b camsim.NormRect) string {
		x0, y0, x1, y1 := max(b.X0-0.01, 0), max(b.Y0-0.01, 0), min(b.X1+0.01, 1), min(b.Y1+0.01, 1)
		return fmt.Sprintf("[{x: %.4f, y: %.4f}, {x: %.4f, y: %.4f}, {x: %.4f, y: %.4f}, {x: %.4f, y: %.4f}]", x0, y0, x1, y0, x1, y1, x0, y1)
	}
	for k, b := range boxes {
		if b.X1 <= b.X0 || b.Y1 <= b.Y0 {
			t.Fatalf("test bug: no badge reader in view %s", k)
		}
	}
	// A Saturday: camera df's schedule is active (G-4.3).
	setScheduleNow(t, time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	dir = t.TempDir()
	site := fmt.Sprintf(`site:
  id: dsite
  name: Magazzino Nord
  controller: Rossi Logistica S.r.l.
  purposes: [tutela del patrimonio aziendale, sicurezza del lavoro]
  contact: privacy@rossi.example, Via Verdi 3, Trento
  notice: https://rossi.example/privacy
  legal_basis: legittimo interesse, art. 6(1)(f) GDPR
  recipients: [personale autorizzato del titolare, autorità giudiziaria su richiesta]
gateway: gw-d
state_dir: state
outputs: {record_dir: rec}
operators:
  - {name: boss, password_file: boss.pw, roles: [admin], cameras: [dp, df], combined_roles_reason: the site manager runs the site alone at night}
  - {name: inst, password_file: inst.pw, roles: [installer], cameras: [dp, df]}
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [df]}
cameras:
  - id: dp
    purpose: controllo accessi all'ingresso
    location: atrio, sopra la reception
    workers: {filmed: false}
    match: {serial: SN-DP}
    xaddr: %s
    username: op
    password_file: op.pw
    record: {enabled: true, retention: 72h, retention_reason: chiusura festiva}
    presets:
      - token: "1"
        position: {pan: 0, tilt: 0, zoom: 0}
        approval: {by: Anna Neri, date: 2026-11-02, document: VS-11}
        masks: [{name: lettore badge, polygon: %s}]
      - token: "2"
        position: {pan: 0.15, tilt: 0.1, zoom: 0.5}
        approval: {by: Anna Neri, date: 2026-11-03, document: VS-12}
        masks: [{name: lettore badge, polygon: %s}]
  - id: df
    purpose: sicurezza del corridoio
    police_link: true
    workers: {filmed: true, authorisation: union-agreement, reference: RSU 12/03/2026 prot. 45}
    approval: {by: Anna Neri, date: 2026-11-04, document: VS-13}
    match: {serial: SN-DF}
    xaddr: %s
    username: op
    password_file: op.pw
    schedule: {timezone: Europe/Rome, weekly: {mon: ["18:00-24:00"], sat: ["00:00-24:00"]}, holidays: [{date: 2026-12-25}]}
    masks: [{name: lettore badge, style: fill, polygon: %s}]
`, sim.Camera("dp").XAddr(), poly(boxes["dp/1"]), poly(boxes["dp/2"]), sim.Camera("df").XAddr(), poly(boxes["df/"]))
	for name, s := range map[string]string{"site.yaml": site, "op.pw": pw + "\n", "boss.pw": pw + "\n", "inst.pw": pw + "\n", "ops.pw": pw + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, sim, boxes
}

// TN, ER-4.7: the dossier has, per camera, what the config and the camera
// say, and a masked snapshot of every approved view — the PTZ camera is
// moved through its presets and returned; the badge reader is flat in
// every snapshot. Only installers and admins may make it; all is audited.
func TestTN_DossierJSON(t *testing.T) {
	dir, sim, boxes := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	// The camera starts off every approved view.
	tamperTo(t, sim.Camera("dp"), camsim.Position{Pan: -0.5, Tilt: 0, Zoom: 0})
	out := filepath.Join(dir, "d.json")
	so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "inst", "--password-file", pwFile(t), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d dossier.Dossier
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Site.Controller != "Rossi Logistica S.r.l." || len(d.Site.Purposes) != 2 || d.Operator != "inst" || len(d.Gaps) != 0 || len(d.Cameras) != 2 {
		t.Fatalf("dossier: %+v", d)
	}
	dp, df := d.Cameras[0], d.Cameras[1]
	if dp.Identity == nil || dp.Identity.SerialNumber != "SN-DP" || dp.Identity.FirmwareVersion != "3.1.4" || dp.Location != "atrio, sopra la reception" {
		t.Errorf("dp identity/location: %+v %q", dp.Identity, dp.Location)
	}
	if !dp.Recording || dp.Retention != "72 h (3 days)" || dp.RetentionWhy != "chiusura festiva" || dp.PoliceLink {
		t.Errorf("dp recording: %+v", dp)
	}
	if df.Recording || !df.PoliceLink || df.Views[0].Approval.Document != "VS-13" || !strings.Contains(strings.Join(df.Schedule, "|"), "Monday: 18:00-24:00|Tuesday: off") {
		t.Errorf("df: %+v", df)
	}
	access := map[string]string{}
	for _, a := range df.Access {
		access[a.Operator] = strings.Join(a.Actions, ",")
	}
	if access["ops"] != "live-view,state-refresh" || !strings.Contains(access["inst"], "dossier") || strings.Contains(access["inst"], "recording") {
		t.Errorf("df access: %v", access)
	}
	for _, c := range d.Cameras {
		for _, v := range c.Views {
			key := c.ID + "/" + v.Preset
			if v.Snapshot == nil {
				t.Errorf("%s: no snapshot: %s", key, v.SnapshotError)
				continue
			}
			sum := sha256.Sum256(v.Snapshot.JPEG)
			if hex.EncodeToString(sum[:]) != v.Snapshot.SHA256 || v.Snapshot.Width != 640 {
				t.Errorf("%s: snapshot %dx%d hash mismatch", key, v.Snapshot.Width, v.Snapshot.Height)
			}
			p := filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".jpg")
			if err := os.WriteFile(p, v.Snapshot.JPEG, 0o600); err != nil {
				t.Fatal(err)
			}
			checkFlat(t, p, boxes[key])
		}
	}
	// The PTZ camera went back to an approved view (the first: it was
	// found off every view).
	if pos, _ := sim.Camera("dp").Position(); math.Abs(pos.Pan) > 0.02 || math.Abs(pos.Zoom) > 0.02 {
		t.Errorf("dp left at %+v", pos)
	}
	// Audited, with the output's hash.
	sum := sha256.Sum256(raw)
	es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "dossier"})
	if err != nil || len(es) != 1 || es[0].Actor != "inst" || es[0].Fields["sha256"] != hex.EncodeToString(sum[:]) || es[0].Fields["snapshots"] != "dp/1 dp/2 df/" {
		t.Fatalf("audit: %v %+v", err, es)
	}
	// A live viewer may not make it: refused, audited, nothing written.
	out2 := filepath.Join(dir, "ops.json")
	_, se, code = runCLI(t, "dossier", "--config", cfg, "--operator", "ops", "--password-file", pwFile(t), "--out", out2)
	if code != 1 || !strings.Contains(se, "refused") || !strings.Contains(se, "installer, admin") {
		t.Errorf("ops: exit %d %s", code, se)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("refused dossier written")
	}
	if es, _ := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "dossier"}); len(es) != 2 || es[1].Outcome != "refused" || es[1].Actor != "ops" {
		t.Errorf("refusal not audited: %+v", es)
	}
}

// Gaps: a camera that cannot give a view's snapshot makes the dossier
// fail (nothing written) unless --allow-gaps, which prints the gap. A
// running agent (holding the outbox) is never fought over the PTZ.
func TestTN_DossierGaps(t *testing.T) {
	dir, sim, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	tamperTo(t, sim.Camera("dp"), camsim.Position{})
	out := filepath.Join(dir, "d.html")
	_, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out, "--no-move")
	if code != 1 || !strings.Contains(se, `camera "dp" preset 2: snapshot: the camera is off preset "2"`) || !strings.Contains(se, "--allow-gaps") {
		t.Fatalf("no-move: exit %d %s", code, se)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an incomplete dossier was written without --allow-gaps")
	}
	so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out, "--no-move", "--allow-gaps")
	if code != 0 || !strings.Contains(so, "2 masked snapshots, 1 gaps") {
		t.Fatalf("allow-gaps: exit %d %s %s", code, so, se)
	}
	html, _ := os.ReadFile(out)
	if n := strings.Count(string(html), "data:image/jpeg;base64,"); n != 2 || !strings.Contains(string(html), `class="gap">No masked snapshot: the camera is off preset`) {
		t.Errorf("html: %d images, gap shown: %v", n, strings.Contains(string(html), "No masked snapshot"))
	}
	// An agent holds the state dir: no PTZ move, the preset not in view is a gap.
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	ob, err := telemetry.OpenOutbox(filepath.Join(dir, "state", "outbox.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	_, se, code = runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out+".2")
	if code != 1 || !strings.Contains(se, "velo run is using") {
		t.Errorf("agent running: exit %d %s", code, se)
	}
	if pos, _ := sim.Camera("dp").Position(); math.Abs(pos.Pan) > 0.02 {
		t.Errorf("camera moved while the agent held it: %+v", pos)
	}
	// An unreachable camera is a gap naming it.
	sim.Camera("df").SetFault("GetDeviceInformation", "ter:NotAuthorized")
	_, se, code = runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out+".3", "--no-move", "--timeout", "5s")
	if code != 1 || !strings.Contains(se, `camera "df": identity:`) {
		t.Errorf("offline: exit %d %s", code, se)
	}
}

// The PDF dossier, checked through poppler: its text (pdftotext) against
// a golden file with times and hashes normalised; its embedded images
// (pdfimages) are exactly the masked snapshots its captions name, with the
// badge reader flat; and it renders (pdftoppm).
func TestTN_DossierPDFGolden(t *testing.T) {
	dir, sim, boxes := dossierSite(t)
	tamperTo(t, sim.Camera("dp"), camsim.Position{Pan: 0.15, Tilt: 0.1, Zoom: 0.5})
	out := filepath.Join(dir, "site.pdf")
	so, se, code := runCLI(t, "dossier", "--config", filepath.Join(dir, "site.yaml"), "--operator", "boss", "--password-file", pwFile(t), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, so, se)
	}
	text := poppler(t, "pdftotext", "-layout", out, "-")
	norm := text
	for _, r := range []struct{ re, to string }{
		{`\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC`, "<TIME>"},
		{`[0-9a-f]{64}`, "<SHA256>"},
		{`[0-9a-f]{12}`, "<HASH12>"},
		{regexp.QuoteMeta(dir), "<DIR>"},
		{`velo \S+`, "velo <VERSION>"},
		{`mask generation \d+`, "mask generation <N>"},
		{`[\d.]+ ms`, "<MS>"},
		{` +\n`, "\n"},
		{`  +`, "  "}, // column positions are pdftotext's layout guess
	} {
		norm = regexp.MustCompile(r.re).ReplaceAllString(norm, r.to)
	}
	golden := filepath.Join("testdata", "dossier.golden.txt")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(norm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/velo -run DossierPDFGolden -update)", err)
	}
	if norm != string(want) {
		t.Errorf("pdftotext differs from %s (-update to rewrite after checking):\n%s", golden, lineDiff(string(want), norm))
	}
	// Embedded images: pdfimages -j writes DCT images as they are stored.
	imgDir := filepath.Join(dir, "img")
	if err := os.Mkdir(imgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	poppler(t, "pdfimages", "-j", out, filepath.Join(imgDir, "i"))
	files, _ := filepath.Glob(filepath.Join(imgDir, "i-*.jpg"))
	captions := regexp.MustCompile(`JPEG SHA-256\s+([0-9a-f]{64})`).FindAllStringSubmatch(text, -1)
	if len(files) != 3 || len(captions) != 3 {
		t.Fatalf("%d images, %d captions", len(files), len(captions))
	}
	order := []string{"dp/1", "dp/2", "df/"}
	for i, f := range files {
		b, _ := os.ReadFile(f)
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != captions[i][1] {
			t.Errorf("image %d is not the snapshot its caption names", i)
		}
		checkFlat(t, f, boxes[order[i]])
	}
	poppler(t, "pdftoppm", "-png", "-r", "30", "-f", "2", "-l", "2", "-singlefile", out, filepath.Join(dir, "page2"))
	fh, err := os.Open(filepath.Join(dir, "page2.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("page 2 render: %v %v", err, img)
	}
}

// G-3.1, ER-4.8: the sign names the controller and purpose, says whether
// images are recorded and how long, carries the police line only on the
// second model, in Italian and English, on A4 and A3, as PDF or PNG.
func TestG31_Sign(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	cases := []struct {
		camera, size string
		want, not    []string
		pageSize     string
	}{
		{"dp", "A4", []string{"AREA VIDEOSORVEGLIATA", "VIDEO-SURVEILLED AREA", "Titolare del trattamento: Rossi Logistica S.r.l.", "Controller: Rossi Logistica S.r.l.",
			"Finalità: controllo accessi all'ingresso", "Le immagini sono registrate e conservate per 3 giorni", "Images are recorded and kept for 3 days",
			"privacy@rossi.example", "Informativa completa: https://rossi.example/privacy"}, []string{"Polizia", "police", "NON"}, "(A4)"},
		{"df", "A3", []string{"Finalità: sicurezza del corridoio", "Le immagini NON sono registrate", "Images are NOT recorded",
			"Il sistema è collegato con le Forze di Polizia.", "The system is linked to the police."}, []string{"conservate per"}, "(A3)"},
	}
	for _, tc := range cases {
		out := filepath.Join(dir, tc.camera+".pdf")
		so, se, code := runCLI(t, "sign", "--config", cfg, "--camera", tc.camera, "--size", tc.size, "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d %s %s", tc.camera, code, so, se)
		}
		text := strings.Join(strings.Fields(poppler(t, "pdftotext", out, "-")), " ")
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s sign lacks %q:\n%s", tc.camera, w, text)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(text, w) {
				t.Errorf("%s sign has %q", tc.camera, w)
			}
		}
		if info := poppler(t, "pdfinfo", out); !strings.Contains(info, tc.pageSize) || !strings.Contains(info, "Pages:           1") {
			t.Errorf("%s: %s", tc.camera, info)
		}
	}
	// PNG: A3 at 50 dpi is 585x827 (297x420 mm).
	out := filepath.Join(dir, "df.png")
	if _, se, code := runCLI(t, "sign", "--config", cfg, "--camera", "df", "--size", "a3", "--dpi", "50", "--out", out); code != 0 {
		t.Fatalf("png: %s", se)
	}
	fh, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(fh)
	fh.Close()
	if err != nil || img.Bounds().Dx() != 585 || img.Bounds().Dy() != 827 {
		t.Fatalf("png: %v %v", err, img.Bounds())
	}
	// The yellow band at the top, white below it.
	if r, g, b, _ := img.At(292, 60).RGBA(); r>>8 < 240 || g>>8 < 190 || b>>8 > 30 {
		t.Errorf("band colour %d %d %d", r>>8, g>>8, b>>8)
	}
	// Bad input names what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--camera", "nope", "--out", out}, `no camera "nope"`},
		{[]string{"--camera", "df", "--out", filepath.Join(dir, "x.gif")}, "write a .pdf or a .png"},
		{[]string{"--camera", "df", "--size", "A5", "--out", out}, "not A4 or A3"},
	} {
		_, se, code := runCLI(t, append([]string{"sign", "--config", cfg}, tc.args...)...)
		if code == 0 || !strings.Contains(se, tc.want) {
			t.Errorf("%v: exit %d %s", tc.args, code, se)
		}
	}
	noContact := filepath.Join(dir, "nc.yaml")
	raw, _ := os.ReadFile(cfg)
	if err := os.WriteFile(noContact, bytes.Replace(raw, []byte("  contact: privacy@rossi.example, Via Verdi 3, Trento\n"), nil, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, se, code := runCLI(t, "sign", "--config", noContact, "--camera", "df", "--out", out); code == 0 || !strings.Contains(se, "site.contact is required") || !strings.Contains(se, "nc.yaml") {
		t.Errorf("no contact: exit %d %s", code, se)
	}
}

// tamperTo moves a simulated camera by hand and waits until it is there.
func tamperTo(t *testing.T, c *camsim.Camera, p camsim.Position) {
	t.Helper()
	c.Tamper(p)
	for i := 0; i < 100; i++ {
		if q, moving := c.Position(); !moving && math.Abs(q.Pan-p.Pan) < 0.005 && math.Abs(q.Tilt-p.Tilt) < 0.005 && math.Abs(q.Zoom-p.Zoom) < 0.005 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("camera %s did not reach %+v", c.ID(), p)
}

func poppler(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s (poppler-utils is installed by deploy/deps.sh)", name, args, err, out)
	}
	return string(out)
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 10; i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, a, c)
			n++
		}
	}
	return b.String()
}

// EDPB-7, G-3.1: names outside Windows-1252 reach the reader intact. The
// sign and the dossier embed their font (pdffonts: every font "emb yes",
// none of PDF's unembedded standard fonts) and the controller's name
// comes back from pdftotext letter for letter.
func TestG31_SignAndDossierPrintAnyName(t *testing.T) {
	dir, _, _ := dossierSite(t)
	const name = "Ștefan Łódź S.r.l. — Αθήνα"
	cfg := filepath.Join(dir, "site.yaml")
	raw, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, bytes.Replace(raw, []byte("controller: Rossi Logistica S.r.l."), []byte("controller: "+name), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	sign := filepath.Join(dir, "dp.pdf")
	if so, se, code := runCLI(t, "sign", "--config", cfg, "--camera", "dp", "--out", sign); code != 0 {
		t.Fatalf("sign: exit %d %s %s", code, so, se)
	}
	dossier := filepath.Join(dir, "site.pdf")
	if so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", dossier); code != 0 {
		t.Fatalf("dossier: exit %d %s %s", code, so, se)
	}
	for _, out := range []string{sign, dossier} {
		text := strings.Join(strings.Fields(poppler(t, "pdftotext", out, "-")), " ")
		if !strings.Contains(text, "Titolare del trattamento: "+name) && !strings.Contains(text, name) {
			t.Errorf("%s: %q not in the text:\n%s", filepath.Base(out), name, text)
		}
		fonts := strings.Split(strings.TrimSpace(poppler(t, "pdffonts", out)), "\n")
		if len(fonts) < 3 {
			t.Fatalf("%s: no fonts listed:\n%s", filepath.Base(out), strings.Join(fonts, "\n"))
		}
		for _, line := range fonts[2:] { // after the header and the dashes
			f := strings.Fields(line)
			// name type [encoding] emb sub uni object ID: emb is the
			// 5th field from the end.
			if len(f) < 7 || f[len(f)-5] != "yes" || !strings.Contains(strings.ToLower(f[0]), "dejavusans") {
				t.Errorf("%s: font not embedded or not DejaVu Sans: %s", filepath.Base(out), line)
			}
		}
	}
}

// EDPB-7: the first layer states the legal basis and the recipients; the
// sign refuses without them (naming the field), config check warns about
// them and about a missing DPO, and the dossier lists them.
func TestEDPB7_LegalBasisRecipientsAndDPO(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	out := filepath.Join(dir, "df.pdf")
	if so, se, code := runCLI(t, "sign", "--config", cfg, "--camera", "df", "--out", out); code != 0 {
		t.Fatalf("sign: exit %d %s %s", code, so, se)
	}
	text := strings.Join(strings.Fields(poppler(t, "pdftotext", out, "-")), " ")
	for _, w := range []string{"Base giuridica: legittimo interesse, art. 6(1)(f) GDPR", "Legal basis: legittimo interesse",
		"Destinatari: personale autorizzato del titolare; autorità giudiziaria su richiesta", "Recipients: personale autorizzato"} {
		if !strings.Contains(text, w) {
			t.Errorf("sign lacks %q:\n%s", w, text)
		}
	}
	raw, _ := os.ReadFile(cfg)
	for _, tc := range []struct{ drop, field string }{
		{"  legal_basis: legittimo interesse, art. 6(1)(f) GDPR\n", "site.legal_basis"},
		{"  recipients: [personale autorizzato del titolare, autorità giudiziaria su richiesta]\n", "site.recipients"},
	} {
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, bytes.Replace(raw, []byte(tc.drop), nil, 1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, se, code := runCLI(t, "sign", "--config", bad, "--camera", "df", "--out", out); code == 0 || !strings.Contains(se, tc.field+" is required") {
			t.Errorf("sign without %s: exit %d %s", tc.field, code, se)
		}
		if _, se, code := runCLI(t, "config", "check", bad); code != 0 || !strings.Contains(se, "warning: "+tc.field+": not set (EDPB-7)") {
			t.Errorf("config check without %s: exit %d %s", tc.field, code, se)
		}
	}
	// No DPO in this site: a warning, not a refusal.
	if _, se, code := runCLI(t, "config", "check", cfg); code != 0 || !strings.Contains(se, "warning: site.dpo: not set (EDPB-7)") {
		t.Errorf("config check without a DPO: exit %d %s", code, se)
	}
}

// L300-4: a camera that films workers carries its union agreement (or the
// labour inspectorate's authorisation) on its sign and in the dossier;
// the config refusals are in agent/config's TestConfigRules.
func TestL3004_WorkplaceCameraShowsItsAgreement(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	sign := filepath.Join(dir, "df.pdf")
	if so, se, code := runCLI(t, "sign", "--config", cfg, "--camera", "df", "--out", sign); code != 0 {
		t.Fatalf("sign: exit %d %s %s", code, so, se)
	}
	text := strings.Join(strings.Fields(poppler(t, "pdftotext", sign, "-")), " ")
	for _, w := range []string{"ai sensi dell'art. 4 L. 300/1970: accordo sindacale RSU 12/03/2026 prot. 45", "Installed under Art. 4 of Law 300/1970: union agreement RSU 12/03/2026 prot. 45"} {
		if !strings.Contains(text, w) {
			t.Errorf("sign lacks %q:\n%s", w, text)
		}
	}
	out := filepath.Join(dir, "site.json")
	if so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out); code != 0 {
		t.Fatalf("dossier: exit %d %s %s", code, so, se)
	}
	raw, _ := os.ReadFile(out)
	var d dossier.Dossier
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dp": "no", "df": "yes, under the union agreement RSU 12/03/2026 prot. 45 (Art. 4 L. 300/1970)"}
	for _, c := range d.Cameras {
		if c.Workers != want[c.ID] {
			t.Errorf("camera %s: workers %q, want %q", c.ID, c.Workers, want[c.ID])
		}
	}
}

// G-3.3.1 f: plaintext MQTT across the network is allowed only by an
// explicit setting, and the dossier says so.
func TestG331f_DossierListsAPlaintextBroker(t *testing.T) {
	dir, _, _ := dossierSite(t)
	cfg := filepath.Join(dir, "site.yaml")
	raw, _ := os.ReadFile(cfg)
	withBroker := func(b string) {
		if err := os.WriteFile(cfg, bytes.Replace(raw, []byte("gateway: gw-d\n"), []byte("gateway: gw-d\nbroker: "+b+"\n"), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	withBroker(`{url: "tcp://192.0.2.7:1883"}`)
	if _, se, code := runCLI(t, "config", "check", cfg); code == 0 || !strings.Contains(se, "broker.url") || !strings.Contains(se, "plaintext to another host") {
		t.Errorf("plaintext broker off host accepted: exit %d %s", code, se)
	}
	withBroker(`{url: "tcp://192.0.2.7:1883", plaintext_lan: true}`)
	out := filepath.Join(dir, "site.json")
	if so, se, code := runCLI(t, "dossier", "--config", cfg, "--operator", "boss", "--password-file", pwFile(t), "--out", out); code != 0 {
		t.Fatalf("dossier: exit %d %s %s", code, so, se)
	}
	raw2, _ := os.ReadFile(out)
	var d dossier.Dossier
	if err := json.Unmarshal(raw2, &d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.BrokerLink, "PLAINTEXT to another host") || !strings.Contains(d.BrokerLink, "broker.plaintext_lan") {
		t.Errorf("broker link %q", d.BrokerLink)
	}
}

// setScheduleNow makes the CLI check camera schedules at at (G-4.3).
func setScheduleNow(t *testing.T, at time.Time) {
	t.Helper()
	old := scheduleNow
	scheduleNow = func() time.Time { return at }
	t.Cleanup(func() { scheduleNow = old })
}
