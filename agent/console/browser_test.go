package console_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"velo/agent/dossier"
	"velo/agent/event"
	"velo/internal/testkit"
	"velo/masking/maskspec"
)

// The polygon the installer draws, in [0,1] (clockwise from top-left).
var drawn = []maskspec.Point{{X: 0.55, Y: 0.35}, {X: 0.85, Y: 0.35}, {X: 0.85, Y: 0.75}, {X: 0.55, Y: 0.75}}

// chromium finds Debian's chromium; without it the browser test is
// skipped, except in CI, where deploy/deps.sh installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (deploy/deps.sh installs it): the console's browser test must run in CI")
	}
	t.Skip("chromium is not installed (run deploy/deps.sh as root): browser test skipped")
	return ""
}

// testBrowser: in headless Chromium, the installer logs in, opens the
// camera, opens commissioning, draws a polygon with the mouse on the
// picture and saves it; the admin approves it; Velo's RTSP output, decoded
// by ffmpeg, then has the region masked and the rest unchanged.
func testBrowser(t *testing.T, r *rig) {
	exe := chromium(t)
	type grabbed struct {
		frames [][]byte
		err    error
	}
	beforeCh := make(chan grabbed, 1)
	go func() { // Velo's output before, decoded while the browser works
		f, err := r.grab(2)
		beforeCh <- grabbed{f, err}
	}()
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1366, 768))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(r.url)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		defer func() { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			t.Fatalf("%s: %v; the page says: %s", what, err, page)
		}
	}
	shots := newShots(t, ctx)
	login := func(user, pw string) {
		step("login as "+user, chromedp.WaitVisible(chromedp.CSS("#user")),
			chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS("#login button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#cameras")))
	}
	step("language", chromedp.Evaluate[chromedp.Void](`localStorage.setItem('velo-lang','en')`), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#user")), chromedp.Click(chromedp.CSS("#lang")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#login h1').textContent === 'Accedi'`),
		chromedp.Click(chromedp.CSS("#lang")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#login h1').textContent === 'Log in'`))
	shots.take("login")
	login("inst", installerPW)
	step("live state", chromedp.Poll[chromedp.Void](`document.querySelector('[data-camera] .state').textContent.includes('streaming')`),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-camera] .state').textContent.includes('view not verified')`)) // no reference yet
	step("masked snapshot", chromedp.Click(chromedp.CSS("[data-camera] button.snapshot")),
		chromedp.Poll[chromedp.Void](`document.querySelector('[data-camera] img.snap').naturalWidth > 0`))
	shots.take("cameras")
	step("open the camera", chromedp.Click(chromedp.CSS("[data-camera] button.edit")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#picture').naturalWidth > 0`))
	step("commissioning", chromedp.SendKeys(chromedp.CSS("#reason"), "placing the door mask"), chromedp.Click(chromedp.CSS("#open-comm")),
		chromedp.WaitVisible(chromedp.CSS("#still")), chromedp.Click(chromedp.CSS("#still")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#picture').dataset.kind === 'still' && document.querySelector('#picture').complete`))
	step("new mask", chromedp.Click(chromedp.CSS("#new-mask")))
	drawPolygon(t, ctx)
	label := `document.querySelector('.masklist .sel').textContent`
	step("keyboard: Delete removes the selected point, Ctrl+Z undoes it",
		chromedp.Focus(chromedp.CSS("#overlay")), chromedp.KeyEvent(kb.Delete),
		chromedp.Poll[chromedp.Void](label+` === 'mask-2 (3)'`),
		chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.Poll[chromedp.Void](label+` === 'mask-2 (4)'`))
	tap(t, ctx, 0.3, 0.85) // a finger adds a point too; undone by the keyboard
	step("touch: a tap adds a point", chromedp.Poll[chromedp.Void](label+` === 'mask-2 (5)'`),
		chromedp.KeyEvent("z", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.Poll[chromedp.Void](label+` === 'mask-2 (4)'`))
	step("name", chromedp.SetValue(chromedp.CSS("#mask-name"), "door"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#mask-name').dispatchEvent(new Event('change'))`),
		chromedp.Click(chromedp.CSS("#render")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#picture').dataset.kind === 'preview'`))
	shots.take("editor")
	step("save", chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#editor-status .ok")))
	if n := len(r.events(event.ViewProposed)); n < 1 {
		t.Fatal("no view_proposed event")
	}
	step("logout", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#user")))
	login("boss", adminPW)
	step("approve", chromedp.Click(chromedp.CSS("#to-proposals")), chromedp.WaitVisible(chromedp.CSS("form.approve")),
		chromedp.SendKeys(chromedp.CSS("form.approve input[name=by]"), "A. Bianchi"),
		chromedp.SendKeys(chromedp.CSS("form.approve input[name=document]"), "DOC-2"))
	shots.take("proposals")
	before := <-beforeCh // Velo's output before the approval changes it
	if before.err != nil {
		t.Fatal(before.err)
	}
	step("approve", chromedp.Click(chromedp.CSS("form.approve button")),
		chromedp.Poll[chromedp.Void](`!document.querySelector('form.approve') && document.querySelector('.diff')`))
	t.Logf("%5.1fs approved", time.Since(t0).Seconds())
	checkApplied(t, r, before.frames)
	t.Logf("%5.1fs checked", time.Since(t0).Seconds())
}

// drawPolygon clicks the polygon's points on the picture with the mouse.
func drawPolygon(t *testing.T, ctx context.Context) {
	t.Helper()
	box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const o = document.querySelector('#overlay'); o.scrollIntoView({block: 'center'}); const r = o.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
	if err != nil || len(box) != 4 {
		t.Fatalf("picture box: %v %v", box, err)
	}
	for _, p := range drawn {
		if err := chromedp.Do(ctx, chromedp.MouseClickXY(box[0]+p.X*box[2], box[1]+p.Y*box[3])); err != nil {
			t.Fatal(err)
		}
	}
}

// tap touches the picture at (fx, fy) of its box with one finger.
func tap(t *testing.T, ctx context.Context, fx, fy float64) {
	t.Helper()
	box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector('#overlay').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
	if err != nil || len(box) != 4 {
		t.Fatalf("picture box: %v %v", box, err)
	}
	pt := &input.TouchPoint{X: box[0] + fx*box[2], Y: box[1] + fy*box[3]}
	_, err = chromedp.Run(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchStart, TouchPoints: []*input.TouchPoint{pt}}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{}})
		return err
	}))
	if err != nil {
		t.Fatalf("tap: %v", err)
	}
}

// checkApplied: the approved view is in force, audited with its diff, and
// Velo's RTSP output has the drawn region masked (black, flat) and the
// rest as before.
func checkApplied(t *testing.T, r *rig, before [][]byte) {
	t.Helper()
	cam := r.a.Config().Camera(r.cam)
	if len(cam.Masks) != 2 || cam.Masks[1].Name != "door" || cam.Approval.Document != "DOC-2" {
		t.Fatalf("after approval: masks %+v, approval %+v", cam.Masks, cam.Approval)
	}
	ap := r.events(event.ViewApproved)
	if len(ap) != 1 || ap[0].Operator != "boss" || ap[0].Ref != "DOC-2" || !strings.Contains(ap[0].Detail, "+ door (fill, 4 points)") {
		t.Fatalf("view_approved events: %+v", ap)
	}
	if len(r.events(event.ViewChanged)) == 0 {
		t.Error("no view_changed event from the reload")
	}
	checkDossierHistory(t, r)
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != 200 {
		t.Fatalf("login: %d", code)
	}
	testkit.WaitFor(t, 20*time.Second, "view verified against the reference captured at approval", func() bool {
		_, body := b.get("api/cameras")
		return strings.Contains(string(body), `"view_verified":true`)
	})
	if _, err := os.Stat(r.a.Config().ReferencePath(r.cam, "", false)); err != nil || !strings.Contains(ap[0].Detail, "view reference captured") {
		t.Errorf("no view reference captured at approval: %v; %s", err, ap[0].Detail)
	}
	var after [][]byte
	deadline := time.Now().Add(30 * time.Second)
	for t1 := time.Now(); ; {
		after = r.grabFrames(t, 2)
		st, _ := r.a.State(r.cam)
		t.Logf("grab after %.1fs: state %s", time.Since(t1).Seconds(), st.Status)
		if in, _ := regionStats(after[len(after)-1], drawn); in.std < 2 && in.mean < 30 {
			break
		}
		if time.Now().After(deadline) {
			in, _ := regionStats(after[len(after)-1], drawn)
			t.Fatalf("the drawn region is not masked in Velo's output: mean %.1f, std %.1f", in.mean, in.std)
		}
		time.Sleep(500 * time.Millisecond)
	}
	inBefore, _ := regionStats(before[len(before)-1], drawn)
	if inBefore.std < 4 {
		t.Fatalf("the region had no texture before (std %.1f): the test proves nothing", inBefore.std)
	}
	diff := outsideDiff(before[len(before)-1], after[len(after)-1], drawn)
	t.Logf("FIGURES console e2e: drawn region before mean %.1f std %.1f; after masked; mean |diff| outside it %.2f", inBefore.mean, inBefore.std, diff)
	if diff > 6 {
		t.Errorf("outside the drawn region the output changed: mean |diff| %.2f", diff)
	}
}

// checkDossierHistory: velo dossier shows the view's history (proposal,
// approval, the reload's change) from the audit log.
func checkDossierHistory(t *testing.T, r *rig) {
	t.Helper()
	cfg := r.a.Config()
	d, err := dossier.Build(context.Background(), cfg, cfg.File(), "boss", "test", dossier.Sources{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := strings.Join(d.Cameras[0].Views[0].History, "\n")
	for _, want := range []string{"view_proposed by inst", "view_approved by boss", "view_changed by agent"} {
		if !strings.Contains(h, want) {
			t.Errorf("dossier history lacks %q:\n%s", want, h)
		}
	}
}

type stats struct{ mean, std float64 }

// inside: the pixel (x, y) of a 320×240 frame is inside poly's bounding
// box shrunk by 3 px (the drawn polygon is a rectangle; the shrink keeps
// the encoder's edge blur out).
func inside(x, y int, poly []maskspec.Point, shrink int) bool {
	x0, y0, x1, y1 := 1.0, 1.0, 0.0, 0.0
	for _, p := range poly {
		x0, y0, x1, y1 = math.Min(x0, p.X), math.Min(y0, p.Y), math.Max(x1, p.X), math.Max(y1, p.Y)
	}
	return x >= int(x0*320)+shrink && x < int(x1*320)-shrink && y >= int(y0*240)+shrink && y < int(y1*240)-shrink
}

func regionStats(f []byte, poly []maskspec.Point) (stats, int) {
	var sum, sq float64
	n := 0
	for y := range 240 {
		for x := range 320 {
			if inside(x, y, poly, 3) {
				v := float64(f[y*320+x])
				sum, sq, n = sum+v, sq+v*v, n+1
			}
		}
	}
	m := sum / float64(n)
	return stats{mean: m, std: math.Sqrt(math.Max(sq/float64(n)-m*m, 0))}, n
}

// outsideDiff is the mean absolute difference of two frames away from
// poly (and from the approved badge mask, which both frames have).
func outsideDiff(a, b []byte, poly []maskspec.Point) float64 {
	var sum float64
	n := 0
	for y := range 240 {
		for x := range 320 {
			if !inside(x, y, poly, -4) {
				sum += math.Abs(float64(a[y*320+x]) - float64(b[y*320+x]))
				n++
			}
		}
	}
	return sum / float64(n)
}

// shots writes screenshots of the pages at 1366×768 and at phone width
// into docs/console/ when VELO_CONSOLE_SCREENSHOTS is set (never in CI
// otherwise: the docs are not rewritten by a test run).
type shots struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func newShots(t *testing.T, ctx context.Context) *shots {
	if os.Getenv("VELO_CONSOLE_SCREENSHOTS") == "" {
		return &shots{t: t}
	}
	return &shots{t: t, ctx: ctx, dir: filepath.Join("..", "..", "docs", "console")}
}

func (s *shots) take(page string) {
	if s.dir == "" {
		return
	}
	for _, size := range []struct {
		name string
		w, h int64
	}{{"desktop", 1366, 768}, {"phone", 390, 844}} {
		img, err := chromedp.Run(s.ctx, chromedp.Steps(chromedp.EmulateViewport(size.w, size.h), chromedp.Sleep(300*time.Millisecond)))
		_ = img
		if err == nil {
			var jpg []byte
			jpg, err = chromedp.Run(s.ctx, chromedp.FullScreenshot(80))
			if err == nil {
				err = os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%s-%s.jpg", page, size.name)), jpg, 0o644)
			}
		}
		if err != nil {
			s.t.Fatalf("screenshot %s %s: %v", page, size.name, err)
		}
	}
	if _, err := chromedp.Run(s.ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		s.t.Fatal(err)
	}
}
