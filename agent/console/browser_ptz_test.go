package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"velo/agent/access"
	"velo/agent/commands"
	"velo/agent/event"
	"velo/internal/testkit"
)

// testBrowserPTZ: in headless Chromium the installer opens the PTZ camera,
// opens commissioning, moves it with the pad's buttons and keyboard (the
// lock held: the stream blank, no snap-back), draws a mask and saves the
// position as a proposed preset; a signed MQTT preset/apply of it is
// refused; the session closed, the camera snaps back; the admin approves
// the proposal, which adds the preset to the managed views file and
// records its view reference there; after the reload the same
// preset/apply is accepted and the camera streams there, verified.
func testBrowserPTZ(t *testing.T, r *rig) {
	exe := chromium(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1366, 768))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
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
	login := func(user, pw string) {
		step("login as "+user, chromedp.WaitVisible(chromedp.CSS("#user")),
			chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS("#login button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#cameras")))
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(r.url)); err != nil {
		t.Fatal(err)
	}
	shots := newShots(t, ctx)
	step("english", chromedp.Evaluate[chromedp.Void](`localStorage.setItem('velo-lang','en')`), chromedp.Reload())
	login("inst", installerPW)
	step("open the PTZ camera", chromedp.Click(chromedp.CSS(`[data-camera="ptz"] button.edit`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#picture').naturalWidth > 0`))
	step("commissioning", chromedp.SendKeys(chromedp.CSS("#reason"), "framing the gate"), chromedp.Click(chromedp.CSS("#open-comm")),
		chromedp.WaitVisible(chromedp.CSS("#ptz")))
	pos := `document.querySelector('#ptz-pos').textContent`
	moves0, held0 := r.count(event.CommissioningMove, "relative move"), len(r.events(event.PTZHeld))
	step("move: buttons", chromedp.SetValue(chromedp.CSS("#ptz-step"), "0.2"),
		chromedp.Click(chromedp.CSS("#ptz-right")), chromedp.Poll[chromedp.Void](pos+`.includes('pan 0.200')`),
		chromedp.Click(chromedp.CSS("#ptz-right")), chromedp.Poll[chromedp.Void](pos+`.includes('pan 0.400')`),
		chromedp.Click(chromedp.CSS("#ptz-zoom-in")), chromedp.Poll[chromedp.Void](pos+`.includes('zoom 0.200')`))
	step("move: keyboard", chromedp.Focus(chromedp.CSS("#ptz")), chromedp.KeyEvent(kb.ArrowUp),
		chromedp.Poll[chromedp.Void](pos+`.includes('tilt 0.200')`))
	testkit.WaitFor(t, 15*time.Second, "camera at the new position, held, stream blank", func() bool {
		s, _ := r.a.State(r.ptz)
		p, moving := r.sim.Camera(r.ptz).Position()
		return !s.Approved && !moving && math.Abs(p.Pan-0.4) < 0.01 && math.Abs(p.Tilt-0.2) < 0.01 && math.Abs(p.Zoom-0.2) < 0.01
	})
	if h, m := len(r.events(event.PTZHeld))-held0, r.count(event.CommissioningMove, "relative move")-moves0; h != 1 || m != 4 {
		t.Fatalf("4 moves in one hold: %d ptz_held, %d commissioning_move", h, m)
	}
	step("still at the new position", chromedp.Poll[chromedp.Void](`document.querySelector('#picture').dataset.kind === 'still'`))
	step("new mask", chromedp.Click(chromedp.CSS("#new-mask")))
	drawPolygon(t, ctx)
	step("save the proposed preset", chromedp.SendKeys(chromedp.CSS("#preset-name"), "gate"), chromedp.Click(chromedp.CSS("#save-preset")),
		chromedp.WaitVisible(chromedp.CSS("#editor-status .ok")))
	shots.take("ptz")
	p := r.proposalOf(t, r.ptz)
	token, _ := p["preset"].(string)
	if pp, _ := p["position"].(map[string]any); token == "" || p["name"] != "gate" || pp == nil || math.Abs(pp["pan"].(float64)-0.4) > 0.01 {
		t.Fatalf("the proposal: %v", p)
	}
	cmd := r.commander(t)
	if out := cmd.apply(t, token); out.Kind != event.CommandRefused || !strings.Contains(out.Detail, "not approved") {
		t.Fatalf("preset/apply of the proposed preset before approval: %s %s", out.Kind, out.Detail)
	}
	step("close commissioning", chromedp.Click(chromedp.CSS("#close-comm")), chromedp.WaitVisible(chromedp.CSS("#open-comm")))
	testkit.WaitFor(t, 15*time.Second, "snap-back to preset 1 after the session", func() bool {
		s, _ := r.a.State(r.ptz)
		return s.Approved && s.Preset == "1"
	})
	step("logout", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#user")))
	login("boss", adminPW)
	form := `.proposal:has(.newpreset) form.approve`
	step("approve the preset", chromedp.Click(chromedp.CSS("#to-proposals")), chromedp.WaitVisible(chromedp.CSS(form)),
		chromedp.SendKeys(chromedp.CSS(form+" input[name=by]"), "A. Bianchi"),
		chromedp.SendKeys(chromedp.CSS(form+" input[name=document]"), "DOC-P2"),
		chromedp.Click(chromedp.CSS(form+" button")),
		chromedp.Poll[chromedp.Void](`!document.querySelector('`+form+`') && document.querySelector('.proposal:has(.newpreset) .diff')`))
	cam := r.a.Config().Camera(r.ptz)
	if n := len(cam.Presets); n != 2 || cam.Presets[1].Token != token || cam.Presets[1].Approval.Document != "DOC-P2" || len(cam.Presets[1].Masks) != 1 {
		t.Fatalf("after approval the PTZ camera's presets: %+v", cam.Presets)
	}
	var ap event.Event
	for _, e := range r.events(event.ViewApproved) {
		if e.Camera == r.ptz {
			ap = e
		}
	}
	if !strings.Contains(ap.Detail, `new preset "gate"`) || !strings.Contains(ap.Detail, "view reference captured at the new preset") {
		t.Fatalf("view_approved of the preset: %q", ap.Detail)
	}
	if _, err := os.Stat(r.a.Config().ReferencePath(r.ptz, token, false)); err != nil {
		t.Fatalf("no reference for the new preset: %v", err)
	}
	testkit.WaitFor(t, 30*time.Second, "PTZ camera back after the reload", func() bool {
		s, _ := r.a.State(r.ptz)
		return s.Approved && s.Preset == "1" && s.Status == "streaming"
	})
	if out := cmd.apply(t, token); out.Kind != event.CommandExecuted || out.Detail != "ok" {
		t.Fatalf("preset/apply of the approved preset: %s %s", out.Kind, out.Detail)
	}
	at, _ := r.sim.Camera(r.ptz).Position()
	if math.Abs(at.Pan-0.4) > 0.03 || math.Abs(at.Tilt-0.2) > 0.03 {
		t.Fatalf("after preset/apply the camera is at %+v", at)
	}
	testkit.WaitFor(t, 20*time.Second, "streaming at the new preset, its frames checked against its reference", func() bool {
		s, _ := r.a.State(r.ptz)
		return s.Preset == token && s.Approved && s.Status == "streaming"
	})
	t.Logf("%5.1fs preset %s applied", time.Since(t0).Seconds(), token)
}

// commander publishes signed commands as the admin to the embedded broker.
type commander struct {
	r   *rig
	col *testkit.Collector
	n   int
}

func (r *rig) commander(t *testing.T) *commander {
	col := testkit.NewCollector(t, testkit.CollectorOptions{URL: r.broker, Username: "boss",
		Password: access.StreamPassword("t", "boss", adminPW, 1)}, "velo/t/gw/events")
	return &commander{r: r, col: col}
}

// apply sends preset/apply for the PTZ camera and returns the command's
// outcome event.
func (c *commander) apply(t *testing.T, preset string) event.Event {
	t.Helper()
	c.n++
	now := c.r.clock.Now() // the agent's clock (the tests moved it)
	id := fmt.Sprintf("ptz-%d-%d", now.UnixNano(), c.n)
	cmd := commands.Command{RequestID: id, Operator: "boss", Gateway: "gw", IssuedAt: now.UTC().Format(time.RFC3339Nano),
		ExpiresAt: now.Add(5 * time.Minute).UTC().Format(time.RFC3339Nano)}
	cmd.Args, _ = json.Marshal(map[string]string{"camera": c.r.ptz, "preset": preset})
	commands.Sign(adminPW, "t", "preset/apply", &cmd)
	payload, _ := json.Marshal(cmd)
	if tok := c.col.Client().Publish("velo/t/gw/cmd/preset/apply", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish preset/apply: %v", tok.Error())
	}
	var out event.Event
	testkit.WaitFor(t, 60*time.Second, "outcome of "+id, func() bool {
		for _, e := range c.r.a.Events() {
			if e.RequestID == id && (e.Kind == event.CommandExecuted || e.Kind == event.CommandRefused) {
				out = e
				return true
			}
		}
		return false
	})
	return out
}
