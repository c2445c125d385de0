package console_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"velo/agent/event"
)

// A PTZ request authenticated before a logout whose body arrives after it
// is refused: the session and its commissioning are read again when the
// request acts, so a logged-out installer cannot move or hold the camera.
func TestConsolePTZBodyAfterLogoutRefused(t *testing.T) {
	r := startRig(t)
	b := r.browser(t)
	if code := b.login("inst", installerPW); code != http.StatusOK {
		t.Fatalf("login %d", code)
	}
	b.openCommissioning(r.ptz, "stale body")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", r.url+"api/cameras/"+r.ptz+"/ptz", pr)
	req.Header.Set("X-CSRF-Token", b.csrf)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan int, 1)
	go func() {
		rs, err := b.c.Do(req)
		if err != nil {
			done <- -1
			return
		}
		_, _ = io.Copy(io.Discard, rs.Body)
		rs.Body.Close()
		done <- rs.StatusCode
	}()
	_, _ = pw.Write([]byte(`{"relative":false,`))
	time.Sleep(time.Second) // the handler has checked the session and waits for the body
	if code, body := b.post("api/logout", nil); code != http.StatusOK {
		t.Fatalf("logout %d %s", code, body)
	}
	r.closedWith(t, "stale body", "logout")
	moves := len(r.events(event.CommissioningMove))
	_, _ = pw.Write([]byte(`"pan":0.9,"tilt":0.5,"zoom":0.5}`))
	pw.Close()
	if code := <-done; code == http.StatusOK {
		t.Errorf("a logged-out session moved the camera (%d)", code)
	}
	if n := len(r.events(event.CommissioningMove)); n != moves {
		t.Errorf("%d commissioning moves after the logout", n-moves)
	}
	if len(r.events(event.PTZHeld)) > len(r.events(event.PTZReleased)) {
		t.Error("the camera is left held after the logout")
	}
}
