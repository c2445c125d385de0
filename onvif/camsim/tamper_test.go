package camsim_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"velo/onvif/camsim"
)

// The camera's web page tampers with its picture as a person on site
// would; each change is measured on the camera's own snapshot.
func TestTamperEndpointChangesThePicture(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "fix", Address: "127.0.99.21", Username: "u", Password: "p4ss",
		Scene: "badge", NoVideo: true, Width: rw, Height: rh})
	cam := sim.Camera("fix")
	base := snapshot(t, cam)

	if code := postTamper(t, cam, "dx=0.1", false); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	mustTamper(t, cam, "dx=0.1")
	if dx, dy := estimateShift(base, snapshot(t, cam), rw, rh, 80); abs(dx-rw/10) > 1 || dy != 0 {
		t.Errorf("dx=0.1 moved the picture by (%d,%d) px, want (%d,0)", dx, dy, rw/10)
	}
	if v := state(t, cam).View; v != (camsim.Tamper{ShiftX: 0.1}) {
		t.Errorf("state reports %+v", v)
	}

	mustTamper(t, cam, "reset=1&flip=h")
	got := snapshot(t, cam)
	if m, d := mirrorDiff(base, got), meanAbsDiff(base, got); m > 3 || d < 10 {
		t.Errorf("flip=h: differs from the mirrored picture by %.1f, from the original by %.1f", m, d)
	}

	mustTamper(t, cam, "reset=1&cover=1")
	if sd := blockStddevRect(snapshot(t, cam), 0, 0, rw, rh); sd > 1 {
		t.Errorf("cover=1: luma stddev %.2f, want a uniform picture", sd)
	}

	mustTamper(t, cam, "reset=1&defocus=4")
	if gb, gg := gradientEnergy(base), gradientEnergy(snapshot(t, cam)); gg > 0.6*gb {
		t.Errorf("defocus=4: gradient energy %.0f → %.0f", gb, gg)
	}

	mustTamper(t, cam, "reset=1&rotate=5&zoom_factor=1.2")
	if v := cam.ViewTamper(); v != (camsim.Tamper{RotateDeg: 5, Zoom: 1.2}) {
		t.Errorf("after rotate and zoom: %+v", v)
	}
	mustTamper(t, cam, "reset")
	if d := meanAbsDiff(base, snapshot(t, cam)); d > 1 {
		t.Errorf("reset: picture differs from the original by %.1f", d)
	}
}

// Invalid requests change nothing; a fixed camera has no motor to move.
func TestTamperEndpointRefusesBadRequests(t *testing.T) {
	sim := camsim.StartForTest(t,
		camsim.CameraConfig{ID: "fix", Address: "127.0.99.22", Username: "u", Password: "p4ss", Scene: "street", NoVideo: true, Width: rw, Height: rh},
		camsim.CameraConfig{ID: "ptz", Address: "127.0.99.23", Username: "u", Password: "p4ss", Scene: "ptz", NoVideo: true, Width: rw, Height: rh,
			PTZ: &camsim.PTZConfig{}})
	fix, ptz := sim.Camera("fix"), sim.Camera("ptz")
	fix.TamperView(camsim.Tamper{Cover: 0.25})
	for _, q := range []string{"dx=2", "dy=x", "rotate=200", "zoom_factor=0.1", "cover=-1", "defocus=51", "flip=d", "reset=maybe",
		"pan=0.5", "dx=0.1&pan=0.5", ""} {
		if code := postTamper(t, fix, q, true); code != http.StatusBadRequest {
			t.Errorf("fixed camera, %q: %d, want 400", q, code)
		}
	}
	if v := fix.ViewTamper(); v != (camsim.Tamper{Cover: 0.25}) {
		t.Errorf("refused requests changed the view: %+v", v)
	}
	// A PTZ camera takes a move and a view tamper in one request.
	mustTamper(t, ptz, "pan=0.2&flip=v")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	for p, moving := ptz.Position(); moving || math.Abs(p.Pan-0.2) > 1e-9; p, moving = ptz.Position() {
		select {
		case <-ctx.Done():
			t.Fatalf("never reached pan 0.2: %+v", p)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if v := ptz.ViewTamper(); v != (camsim.Tamper{FlipV: true}) {
		t.Errorf("ptz view tamper %+v", v)
	}
}

// --- the camera's web page, as a browser would use it -----------------------

func baseURL(c *camsim.Camera) string {
	cc := c.Config()
	return fmt.Sprintf("http://%s:%d", cc.Address, cc.HTTPPort)
}

func mustTamper(t *testing.T, c *camsim.Camera, query string) {
	t.Helper()
	if code := postTamper(t, c, query, true); code != http.StatusNoContent {
		t.Fatalf("tamper %q: %d", query, code)
	}
}

// postTamper POSTs /camsim/tamper?query and returns the status.
func postTamper(t *testing.T, c *camsim.Camera, query string, auth bool) int {
	t.Helper()
	resp := webRequest(t, c, http.MethodPost, "/camsim/tamper?"+query, auth)
	resp.Body.Close()
	return resp.StatusCode
}

// state reads GET /camsim/state.
func state(t *testing.T, c *camsim.Camera) camsim.State {
	t.Helper()
	resp := webRequest(t, c, http.MethodGet, "/camsim/state", true)
	defer resp.Body.Close()
	var st camsim.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("state: %d: %v", resp.StatusCode, err)
	}
	return st
}

// webRequest sends a request to the camera's web page, answering its
// digest challenge (MD5, qop=auth) when auth is set, as a browser would.
func webRequest(t *testing.T, c *camsim.Camera, method, uri string, auth bool) *http.Response {
	t.Helper()
	do := func(authz string) *http.Response {
		req, _ := http.NewRequest(method, baseURL(c)+uri, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do("")
	if resp.StatusCode != http.StatusUnauthorized || !auth {
		return resp
	}
	resp.Body.Close()
	var nonce string
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(h, "algorithm=MD5") {
			nonce = regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(h)[1]
		}
	}
	cc := c.Config()
	sum := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	ha1, ha2 := sum(cc.Username+":camsim:"+cc.Password), sum(method+":"+uri)
	return do(fmt.Sprintf(`Digest username="%s", realm="camsim", nonce="%s", uri="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="%s"`,
		cc.Username, nonce, uri, sum(ha1+":"+nonce+":00000001:c0ffee:auth:"+ha2)))
}

// snapshot is the luma of the camera's main snapshot.
func snapshot(t *testing.T, c *camsim.Camera) []byte {
	t.Helper()
	resp, err := http.Get(baseURL(c) + "/snapshot/main.jpg")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, err := jpeg.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]byte, rw*rh)
	for yy := 0; yy < rh; yy++ {
		for xx := 0; xx < rw; xx++ {
			r, g, b, _ := img.At(xx, yy).RGBA()
			y[yy*rw+xx] = byte((299*(r>>8) + 587*(g>>8) + 114*(b>>8)) / 1000)
		}
	}
	return y
}

func meanAbsDiff(a, b []byte) float64 {
	var s float64
	for i := range rw * rh {
		s += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return s / (rw * rh)
}

// mirrorDiff is the mean absolute difference between b and a mirrored
// left-right.
func mirrorDiff(a, b []byte) float64 {
	var s float64
	for y := 0; y < rh; y++ {
		for x := 0; x < rw; x++ {
			s += math.Abs(float64(a[y*rw+rw-1-x]) - float64(b[y*rw+x]))
		}
	}
	return s / (rw * rh)
}
