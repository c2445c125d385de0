package console_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"velo/agent/config"

	"velo/agent/event"
	"velo/internal/testkit"
	"velo/masking/maskspec"
)

// TestConsole runs one velo run with its console and checks, in order:
// the refusals (static paths, roles, CSRF, fixation, proposals that are
// not approved, expired commissioning), the installer's and the admin's
// whole flow in headless Chromium down to Velo's RTSP output, PTZ in
// commissioning and every end of a commissioning session, the PTZ
// preset flow in Chromium down to a signed preset/apply, the throttling
// of wrong logins, and the agent stopping.
func TestConsole(t *testing.T) {
	r := startRig(t)
	t.Run("StaticPathTraversal", func(t *testing.T) { testStaticTraversal(t, r) })
	t.Run("LiveViewerCannotLogIn", func(t *testing.T) { testLiveViewerRefused(t, r) })
	t.Run("PostWithoutCSRFRefused", func(t *testing.T) { testCSRF(t, r) })
	t.Run("SessionFixation", func(t *testing.T) { testFixation(t, r) })
	t.Run("ER47_UnapprovedProposalChangesNothing", func(t *testing.T) { testUnapproved(t, r) })
	t.Run("PreviewKeepsApprovedMasksOutsideCommissioning", func(t *testing.T) { testPreviewKeepsMasks(t, r) })
	t.Run("AnonymousSessionsEvictNoLogin", func(t *testing.T) { testSessionCaps(t, r) })
	t.Run("EventsEndAtLogout", func(t *testing.T) { testEventsEndAtLogout(t, r) })
	t.Run("NoUnmaskedPictureWithoutItsAudit", func(t *testing.T) { testAuditFailure(t, r) })
	t.Run("ExpiredCommissioningShowsNoStill", func(t *testing.T) { testCommissioningExpiry(t, r) })
	t.Run("Browser", func(t *testing.T) { testBrowser(t, r) })
	t.Run("PTZOnlyInCommissioning", func(t *testing.T) { testPTZRefusals(t, r) })
	t.Run("CommissioningClosedOnEveryEnd", func(t *testing.T) { testCommissioningEnds(t, r) })
	t.Run("BrowserPTZPreset", func(t *testing.T) { testBrowserPTZ(t, r) })
	t.Run("WrongLoginsThrottledAuditedPerBurst", func(t *testing.T) { testThrottle(t, r) })
	t.Run("ParallelLoginsOneAtATime", func(t *testing.T) { testParallelLogins(t, r) })
	t.Run("CommissioningClosedAtStop", func(t *testing.T) { testClosedAtStop(t, r) })
}

func testStaticTraversal(t *testing.T, r *rig) {
	b := r.browser(t)
	if code, body := b.get("static/app.js"); code != http.StatusOK || !bytes.Contains(body, []byte("PolygonEditor")) {
		t.Fatalf("static/app.js: %d", code)
	}
	for _, p := range []string{"static/../site.yaml", "static/..%2f..%2fconsole.go", "static/%2e%2e/%2e%2e/go.mod", "static/..%5c..%5cgo.mod",
		"static//etc/passwd", "static/assets/../../../../etc/passwd", "static/index.html/..%2f..%2fconsole.go", "static/.%2e/console.go"} {
		req, _ := http.NewRequest("GET", r.url, nil)
		req.URL.RawPath = "/" + p
		req.URL.Path, _ = url.PathUnescape("/" + p)
		res, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(res.Body)
		res.Body.Close()
		for _, leak := range []string{"package console", "module velo", "root:", "site:", "password_file"} {
			if strings.Contains(body.String(), leak) {
				t.Errorf("GET /%s: %d, served %q", p, res.StatusCode, leak)
			}
		}
		if res.StatusCode == http.StatusOK && !strings.Contains(body.String(), "<!doctype html>") {
			t.Errorf("GET /%s: 200 with %d bytes", p, body.Len())
		}
	}
}

func testLiveViewerRefused(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("viewer", viewerPW); code != http.StatusUnauthorized {
		t.Fatalf("live-viewer login: %d, want 401", code)
	}
	if code, _ := b.get("api/cameras"); code != http.StatusUnauthorized {
		t.Errorf("live-viewer sees the cameras: %d", code)
	}
	if s := b.session(); s.LoggedIn {
		t.Error("live-viewer has a logged-in session")
	}
	testkit.WaitFor(t, 5*time.Second, "refused login reported", func() bool {
		for _, e := range r.events(event.ConsoleLoginRefused) {
			if e.Operator == "viewer" && strings.Contains(e.Detail, "no installer or admin role") {
				return true
			}
		}
		return false
	})
}

func testCSRF(t *testing.T, r *rig) {
	b := r.browser(t)
	token := b.csrf
	b.csrf = ""
	if code := b.login("inst", installerPW); code != http.StatusForbidden {
		t.Errorf("login without the CSRF token: %d, want 403", code)
	}
	b.csrf = token
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	good := b.csrf
	forged := "x" + good[1:]
	if good[0] == 'x' { // 1 time in 64 the token starts with x itself
		forged = "y" + good[1:]
	}
	for _, bad := range []string{"", token, forged} { // none, the anonymous one, a forged one
		b.csrf = bad
		if code, _ := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": "csrf test"}); code != http.StatusForbidden {
			t.Errorf("POST with CSRF token %q: %d, want 403", bad, code)
		}
	}
	b.csrf = good
	if code, _ := b.post("api/logout", nil); code != http.StatusOK {
		t.Errorf("logout with its token: %d", code)
	}
	if len(r.events(event.CommissioningOpened)) != 0 {
		t.Error("a POST without its CSRF token opened commissioning")
	}
}

func testFixation(t *testing.T, r *rig) {
	attacker := r.browser(t)
	u, _ := url.Parse(r.url)
	planted := attacker.c.Jar.Cookies(u)
	if len(planted) != 1 {
		t.Fatalf("anonymous session cookies: %v", planted)
	}
	victim := r.browser(t)
	victim.c.Jar.SetCookies(u, planted) // the attacker's session id planted in the victim's browser
	victim.csrf = attacker.csrf
	if code := victim.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("victim login: %d", code)
	}
	after := victim.c.Jar.Cookies(u)
	if len(after) != 1 || after[0].Value == planted[0].Value {
		t.Fatalf("session id not rotated at login: %v", after)
	}
	if code, _ := attacker.get("api/cameras"); code != http.StatusUnauthorized {
		t.Errorf("the planted session id is logged in after the victim's login: %d", code)
	}
	if code, _ := victim.get("api/cameras"); code != http.StatusOK {
		t.Errorf("victim after login: %d", code)
	}
	res := victim.do("GET", "api/session", nil, "")
	res.Body.Close()
	for _, c := range res.Cookies() { // no new cookie on a live session
		t.Errorf("cookie set again: %v", c)
	}
	// The login response's cookie flags.
	b := r.browser(t)
	res = b.do("POST", "api/login", map[string]string{"user": "inst", "password": installerPW}, b.csrf)
	res.Body.Close()
	for _, c := range res.Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("session cookie flags: %+v", c)
		}
	}
}

func testUnapproved(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	before := r.a.Config().Camera(r.cam).MaskSets()
	code, body := b.post("api/cameras/"+r.cam+"/proposals", map[string]any{"preset": "", "masks": []map[string]any{
		{"name": "door", "polygon": []map[string]float64{{"x": 0.5, "y": 0.5}, {"x": 0.9, "y": 0.5}, {"x": 0.9, "y": 0.9}}}}})
	if code != http.StatusOK {
		t.Fatalf("proposal: %d %s", code, body)
	}
	var p struct{ ID, Status string }
	_ = json.Unmarshal(body, &p)
	if p.Status != "proposed" {
		t.Fatalf("proposal status %q", p.Status)
	}
	if code, body := b.post("api/proposals/"+p.ID+"/approve", map[string]string{"by": "Me", "date": "2026-12-01", "document": "SELF-1"}); code != http.StatusForbidden {
		t.Errorf("installer approved: %d %s", code, body)
	}
	if after := r.a.Config().Camera(r.cam).MaskSets(); !reflect.DeepEqual(before, after) {
		t.Errorf("an unapproved proposal changed the masks: %+v", after)
	}
	if _, err := os.Stat(r.a.Config().ViewsPath()); err == nil {
		t.Error("the managed views file was written without an approval")
	}
	if len(r.events(event.ViewApproved)) != 0 || len(r.events(event.ConfigApplied)) != 0 {
		t.Error("approval or reload events without an approval")
	}
	if len(r.events(event.ViewProposed)) != 1 {
		t.Error("the proposal was not audited")
	}
	// A malformed mask is refused with its name.
	code, body = b.post("api/cameras/"+r.cam+"/proposals", map[string]any{"masks": []map[string]any{{"name": "tiny", "style": "pixelate", "block": 2,
		"polygon": []map[string]float64{{"x": 0.5, "y": 0.5}, {"x": 0.9, "y": 0.5}, {"x": 0.9, "y": 0.9}}}}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), `mask \"tiny\"`) {
		t.Errorf("weak pixelate block: %d %s", code, body)
	}
}

func testCommissioningExpiry(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	stills0 := len(r.events(event.CommissioningStill))
	if code, _ := b.get("api/cameras/" + r.cam + "/still"); code != http.StatusForbidden {
		t.Fatalf("unmasked still without commissioning: %d, want 403", code)
	}
	if code, _ := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": ""}); code != http.StatusBadRequest {
		t.Errorf("commissioning without a reason: %d, want 400", code)
	}
	if code, body := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": "expiry of a still"}); code != http.StatusOK {
		t.Fatalf("commissioning: %d %s", code, body)
	}
	code, jpg := b.get("api/cameras/" + r.cam + "/still")
	if code != http.StatusOK || !bytes.HasPrefix(jpg, []byte{0xff, 0xd8}) {
		t.Fatalf("still in commissioning: %d, %d bytes", code, len(jpg))
	}
	r.clock.advance(16 * time.Minute) // past the default 15 min
	if code, _ := b.get("api/cameras/" + r.cam + "/still"); code != http.StatusForbidden {
		t.Errorf("unmasked still after the commissioning session expired: %d, want 403", code)
	}
	if s, c := len(r.events(event.CommissioningStill))-stills0, r.count(event.CommissioningClosed, "expiry of a still"); s != 1 || c != 1 {
		t.Errorf("commissioning stills %d, closes %d: want 1 and 1", s, c)
	}
}

func testThrottle(t *testing.T, r *rig) {
	before := len(r.events(event.ConsoleLoginRefused))
	b := r.browserFrom(t, "127.0.0.77") // a source of its own
	codes := map[int]int{}
	for range 100 { // one wrong password: its slow derivation is cached after the first
		codes[b.login("inst", "wrong")]++
	}
	if codes[http.StatusTooManyRequests] < 90 {
		t.Errorf("100 wrong logins: statuses %v, want most of them 429 (throttled)", codes)
	}
	if code := b.login("inst", installerPW); code != http.StatusTooManyRequests {
		t.Errorf("the right password while throttled: %d, want 429 (not even checked)", code)
	}
	r.clock.advance(2 * time.Minute) // the burst's minute ends: its summary
	testkit.WaitFor(t, 10*time.Second, "burst summary", func() bool {
		for _, e := range r.events(event.ConsoleLoginRefused)[before:] {
			if e.Burst != nil {
				return true
			}
		}
		return false
	})
	got := r.events(event.ConsoleLoginRefused)[before:]
	if len(got) != 2 || got[0].Burst != nil || got[1].Burst == nil || got[1].Burst.Count != 100 || got[1].Burst.Source != "127.0.0.77" {
		for _, e := range got {
			t.Logf("%s %s %+v", e.Kind, e.Detail, e.Burst)
		}
		t.Fatalf("101 refused logins reported as %d events, want 2 (the first, then one summary of 100)", len(got))
	}
	r.clock.advance(6 * time.Minute) // the pause ends
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Errorf("login after the pause: %d", code)
	}
}

// badge is the approved mask of the rig's camera, in [0,1].
var badge = []maskspec.Point{{X: 0.05, Y: 0.05}, {X: 0.25, Y: 0.05}, {X: 0.25, Y: 0.25}, {X: 0.05, Y: 0.25}}

// A preview outside commissioning applies the approved masks too: an
// installer who deletes every mask in the editor still sees the badge
// reader masked; inside commissioning the preview shows what is proposed.
func testPreviewKeepsMasks(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	flat := func(comm bool) stats {
		t.Helper()
		code, body := b.post("api/cameras/"+r.cam+"/preview", map[string]any{"preset": "", "masks": []any{}})
		if code != http.StatusOK {
			t.Fatalf("preview (commissioning %v): %d %s", comm, code, body)
		}
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return lumaStats(img, badge)
	}
	// The badge reader's panel is blue (luma about 70); the fill is black (16).
	if s := flat(false); s.std > 3 || s.mean > 30 {
		t.Errorf("preview without masks outside commissioning: the badge region is not masked (mean %.1f, std %.1f)", s.mean, s.std)
	}
	if code, _ := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": "checking the preview"}); code != http.StatusOK {
		t.Fatal("commissioning refused")
	}
	stills0, snaps0 := len(r.events(event.CommissioningStill)), len(r.events(event.ConsoleSnapshot))
	if s := flat(true); s.mean < 45 {
		t.Errorf("preview without masks inside commissioning: the badge region is still black (mean %.1f): the proposal was not what was rendered", s.mean)
	}
	// An unmasked preview is a commissioning still: audited with the reason.
	stills := r.events(event.CommissioningStill)[stills0:]
	if len(stills) != 1 || stills[0].Reason != "checking the preview" || len(r.events(event.ConsoleSnapshot)) != snaps0 {
		t.Errorf("preview inside commissioning audited as %d commissioning stills %+v and %d snapshots, want 1 with the reason and 0",
			len(stills), stills, len(r.events(event.ConsoleSnapshot))-snaps0)
	}
	if code, _ := b.post("api/commissioning/close", nil); code != http.StatusOK {
		t.Error("commissioning close refused")
	}
}

// lumaStats is the luma's mean and deviation inside poly's bounding box
// (shrunk by 3 %), on an image of any size.
func lumaStats(img image.Image, poly []maskspec.Point) stats {
	bd := img.Bounds()
	var sum, sq float64
	n := 0
	for y := bd.Min.Y + int((poly[0].Y+0.03)*float64(bd.Dy())); y < bd.Min.Y+int((poly[2].Y-0.03)*float64(bd.Dy())); y++ {
		for x := bd.Min.X + int((poly[0].X+0.03)*float64(bd.Dx())); x < bd.Min.X+int((poly[2].X-0.03)*float64(bd.Dx())); x++ {
			v := float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
			sum, sq, n = sum+v, sq+v*v, n+1
		}
	}
	m := sum / float64(n)
	return stats{mean: m, std: math.Sqrt(math.Max(sq/float64(n)-m*m, 0))}
}

// 300 anonymous sessions (more than the cap) do not log anyone out; 64
// further logins (the logged-in cap) do evict the oldest logged-in
// session, whose commissioning is closed and audited.
func testSessionCaps(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	if code, _ := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": "session cap test"}); code != http.StatusOK {
		t.Fatal("commissioning refused")
	}
	anon := r.browser(t)
	for range 300 {
		anon.c.Jar, _ = cookiejar.New(nil) // a new browser each time
		anon.session()
	}
	if s := b.session(); !s.LoggedIn {
		t.Fatal("300 anonymous sessions logged the installer out")
	}
	closes0 := len(r.events(event.CommissioningClosed))
	other := r.browser(t)
	for range 64 {
		other.c.Jar, _ = cookiejar.New(nil)
		other.session()
		if code := other.login("inst", installerPW); code != http.StatusOK {
			t.Fatalf("login: %d", code)
		}
	}
	if s := b.session(); s.LoggedIn {
		t.Error("the oldest logged-in session outlived 64 newer logins")
	}
	closed := r.events(event.CommissioningClosed)[closes0:]
	if len(closed) != 1 || closed[0].Reason != "session cap test" {
		t.Errorf("evicted session's commissioning: %d commissioning_closed %+v, want 1 with its reason", len(closed), closed)
	}
}

// 12 wrong logins sent at once from one address (each a new password, so
// each a slow check) are not all checked before the first failure counts:
// one is checked at a time per address, the others refused (429).
func testParallelLogins(t *testing.T, r *rig) {
	b := r.browserFrom(t, "127.0.0.78") // a source of its own
	codes := make(chan int, 12)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			res := b.do("POST", "api/login", map[string]string{"user": "inst", "password": fmt.Sprint("wrong-", i)}, b.csrf)
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusUnauthorized] > freeLogins+1 || got[http.StatusTooManyRequests] == 0 {
		t.Errorf("12 parallel wrong logins: statuses %v, want at most %d checked (401), the rest 429", got, freeLogins+1)
	}
}

// freeLogins is how many wrong logins an address has before its pauses.
const freeLogins = 5

// The live state stream (/api/events) ends when its session is logged out.
func testEventsEndAtLogout(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	res := b.do("GET", "api/events", nil, "")
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if line, err := rd.ReadString('\n'); err != nil || line != "event: state\n" {
		t.Fatalf("events: first line %q, %v", line, err)
	}
	if code, _ := b.post("api/logout", nil); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	rest := make(chan string, 1)
	go func() {
		data, _ := io.ReadAll(rd)
		rest <- string(data)
	}()
	select {
	case data := <-rest:
		if !strings.Contains(data, "event: expired") {
			t.Errorf("events after logout ended without the expired event: %q", data)
		}
	case <-time.After(10 * time.Second):
		t.Error("the events stream outlived the logout by 10 s")
	}
}

// When the audit log cannot take an entry (its lock file replaced by a
// link, which it never follows, root or not), no commissioning session is
// opened and no unmasked still is served.
func testAuditFailure(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("installer login: %d", code)
	}
	lock := filepath.Join(config.AuditDir(r.a.Config()), ".lock")
	breakAudit := func() {
		t.Helper()
		if err := os.Remove(lock); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(r.dir, "elsewhere"), lock); err != nil {
			t.Fatal(err)
		}
	}
	mendAudit := func() { _ = os.Remove(lock) }
	t.Cleanup(mendAudit)
	comm := func() int {
		code, _ := b.post("api/cameras/"+r.cam+"/commissioning", map[string]string{"reason": "audit failure test"})
		return code
	}
	breakAudit()
	if code := comm(); code != http.StatusServiceUnavailable {
		t.Errorf("commissioning opened while the audit log fails: %d, want 503", code)
	}
	mendAudit()
	if code, _ := b.get("api/cameras/" + r.cam + "/still"); code != http.StatusForbidden {
		t.Errorf("still after a refused commissioning: %d, want 403", code)
	}
	if code := comm(); code != http.StatusOK {
		t.Fatalf("commissioning: %d", code)
	}
	breakAudit()
	if code, body := b.get("api/cameras/" + r.cam + "/still"); code != http.StatusServiceUnavailable || bytes.HasPrefix(body, []byte{0xff, 0xd8}) {
		t.Errorf("unmasked still while the audit log fails: %d, %d bytes, want 503 and no picture", code, len(body))
	}
	mendAudit()
	if code, _ := b.post("api/commissioning/close", nil); code != http.StatusOK {
		t.Error("commissioning close refused")
	}
}
