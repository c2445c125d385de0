package console_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
)

// closedWith waits for a commissioning_closed event with reason and a
// detail containing why.
func (r *rig) closedWith(t *testing.T, reason, why string) event.Event {
	t.Helper()
	var got event.Event
	testkit.WaitFor(t, 15*time.Second, "commissioning_closed ("+why+") for "+reason, func() bool {
		for _, e := range r.events(event.CommissioningClosed) {
			if e.Reason == reason {
				got = e
				return strings.Contains(e.Detail, why)
			}
		}
		return false
	})
	return got
}

// count is how many events of kind have a detail containing s.
func (r *rig) count(kind event.Kind, s string) int {
	n := 0
	for _, e := range r.events(kind) {
		if strings.Contains(e.Detail, s) || strings.Contains(e.Reason, s) {
			n++
		}
	}
	return n
}

// reloadSite rewrites site.yaml and reloads velo run.
func (r *rig) reloadSite(t *testing.T, instRoles, bossCameras string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "site.yaml"), []byte(r.siteText(instRoles, bossCameras)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.Reload(); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) openCommissioning(camera, reason string) {
	b.t.Helper()
	if code, body := b.post("api/cameras/"+camera+"/commissioning", map[string]string{"reason": reason}); code != http.StatusOK {
		b.t.Fatalf("commissioning of %s: %d %s", camera, code, body)
	}
}

// PTZ moves only inside commissioning, only on a PTZ camera, by one
// session at a time; a preset is saved only from a position reached in
// the session.
func testPTZRefusals(t *testing.T, r *rig) {
	b, other := r.browser(t), r.browser(t)
	for _, x := range []*browser{b, other} {
		if code := x.login("inst", installerPW); code != http.StatusOK {
			t.Fatalf("login: %d", code)
		}
	}
	step := map[string]any{"relative": true, "pan": 0.05}
	if code, _ := b.post("api/cameras/ptz/ptz", step); code != http.StatusForbidden {
		t.Errorf("move outside commissioning: %d, want 403", code)
	}
	b.openCommissioning(r.cam, "ptz refusals, fixed")
	if code, _ := b.post("api/cameras/"+r.cam+"/ptz", step); code != http.StatusBadRequest {
		t.Errorf("move of a fixed camera: %d, want 400", code)
	}
	b.openCommissioning("ptz", "ptz refusals")
	if code, _ := b.post("api/cameras/ptz/presets", map[string]any{"name": "gate", "masks": []any{}}); code != http.StatusConflict {
		t.Errorf("preset saved before any move: %d, want 409", code)
	}
	for _, bad := range []map[string]any{{"relative": true, "pan": 0.9}, {"pan": 1.5}, {"zoom": -0.1}} {
		if code, _ := b.post("api/cameras/ptz/ptz", bad); code != http.StatusBadRequest {
			t.Errorf("move %v: %d, want 400", bad, code)
		}
	}
	if code, body := b.post("api/cameras/ptz/ptz", step); code != http.StatusOK {
		t.Fatalf("move in commissioning: %d %s", code, body)
	}
	other.openCommissioning("ptz", "ptz refusals, other")
	if code, _ := other.post("api/cameras/ptz/ptz", step); code != http.StatusConflict {
		t.Errorf("a second session moving the held camera: %d, want 409", code)
	}
	if code, _ := b.post("api/cameras/ptz/presets", map[string]any{"name": "../x", "masks": []any{}}); code != http.StatusBadRequest {
		t.Errorf("preset name ../x: %d, want 400", code)
	}
	if code, _ := b.post("api/commissioning/close", nil); code != http.StatusOK {
		t.Fatal("close")
	}
	testkit.WaitFor(t, 15*time.Second, "snap-back after the session closed", func() bool {
		s, _ := r.a.State("ptz")
		return s.Approved && s.Preset == "1" && s.Status == "streaming"
	})
	if n := r.count(event.CommissioningMove, "relative move"); n != 1 {
		t.Errorf("%d commissioning_move events, want 1 (refused moves are not moves)", n)
	}
	if code, _ := other.post("api/commissioning/close", nil); code != http.StatusOK {
		t.Fatal("close")
	}
}

// Every end of a commissioning session writes commissioning_closed (event
// and audit): its time up with no request made (and a PTZ hold released:
// snap-back), the operator losing the installer role in a reload, the
// camera's assignment gone in a reload. (The agent stopping: testClosedAtStop.)
func testCommissioningEnds(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	b.openCommissioning("ptz", "end by expiry")
	if code, body := b.post("api/cameras/ptz/ptz", map[string]any{"relative": true, "pan": 0.3}); code != http.StatusOK {
		t.Fatalf("move: %d %s", code, body)
	}
	testkit.WaitFor(t, 10*time.Second, "held off the view, blank", func() bool {
		s, _ := r.a.State("ptz")
		p, _ := r.sim.Camera("ptz").Position()
		return !s.Approved && p.Pan > 0.25
	})
	released0 := len(r.events(event.PTZReleased))
	r.clock.advance(16 * time.Minute)
	r.closedWith(t, "end by expiry", "expired")
	testkit.WaitFor(t, 15*time.Second, "snap-back once the expired session released the hold", func() bool {
		s, _ := r.a.State("ptz")
		return len(r.events(event.PTZReleased)) > released0 && s.Approved && s.Preset == "1"
	})

	b2 := r.browser(t)
	if code := b2.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	b2.openCommissioning(r.cam, "end by role loss")
	r.reloadSite(t, "live-viewer", "cons, ptz")
	r.closedWith(t, "end by role loss", "no longer has the installer or admin role")
	r.reloadSite(t, "installer", "cons, ptz")
	if s := b2.session(); s.LoggedIn {
		t.Error("the session of an operator who lost the role is still logged in")
	}

	boss := r.browser(t)
	if code := boss.login("boss", adminPW); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	boss.openCommissioning(r.cam, "end by camera unassigned")
	r.reloadSite(t, "installer", "ptz")
	r.closedWith(t, "end by camera unassigned", "camera no longer assigned")
	r.reloadSite(t, "installer", "cons, ptz")
	for _, reason := range []string{"end by expiry", "end by role loss", "end by camera unassigned"} {
		if n := r.count(event.CommissioningClosed, reason); n != 1 {
			t.Errorf("%q: %d commissioning_closed, want 1", reason, n)
		}
	}
	checkAudited(t, r, "end by camera unassigned", "camera no longer assigned")
}

// checkAudited: the audit log has commissioning_closed with reason and why.
func checkAudited(t *testing.T, r *rig, reason, why string) {
	t.Helper()
	found := false
	err := audit.Scan(config.AuditDir(r.a.Config()), func(e audit.Entry, _ bool, _ string, _ int, err error) bool {
		found = found || err == nil && e.Action == string(event.CommissioningClosed) && e.Reason == reason && strings.Contains(e.Detail, why)
		return true
	})
	if err != nil || !found {
		t.Errorf("no commissioning_closed (%s, %s) in the audit log (%v)", reason, why, err)
	}
}

// The agent stopping closes an open commissioning session, on record.
func testClosedAtStop(t *testing.T, r *rig) {
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	b.openCommissioning(r.cam, "end by agent stop")
	r.stop()
	checkAudited(t, r, "end by agent stop", "agent stopping")
}

// proposalOf reads the newest proposal of camera from the proposals file.
func (r *rig) proposalOf(t *testing.T, camera string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.a.Config().StateDir, "console", "proposals.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i]["camera"] == camera {
			return list[i]
		}
	}
	t.Fatalf("no proposal for %s", camera)
	return nil
}
