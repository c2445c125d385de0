package console_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent"
	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// movedClock is the system clock moved forward by the test (session and
// commissioning expiry, throttling, bursts).
type movedClock struct {
	*retention.SystemClock
	by atomic.Int64
}

func (c *movedClock) Now() time.Time          { return time.Now().Add(time.Duration(c.by.Load())) }
func (c *movedClock) advance(d time.Duration) { c.by.Add(int64(d)) }

// rig is one velo run (a simulated fixed camera and a PTZ camera, 320×240)
// with the console on loopback, shared by the console's tests.
type rig struct {
	a      *agent.Agent
	url    string
	dir    string
	cam    string
	ptz    string // the PTZ camera (preset "1" approved)
	sim    *camsim.Sim
	broker string // the embedded MQTT broker
	rtsp   string
	clock  *movedClock
	stop   func() // stops velo run (once)
	serial string
	ports  [3]int    // RTSP, console, MQTT
	xaddrs [2]string // the cameras' ONVIF addresses
}

const (
	installerPW = "inst-pw-1"
	adminPW     = "admin-pw-1"
	viewerPW    = "viewer-pw-1"
)

// The fixed camera's approved mask when the test starts.
const siteYAML = `site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
state_dir: state
views_file: console-views.yaml
broker: {embedded_listen: "127.0.0.1:%[7]d"}
outputs: {rtsp_listen: "127.0.0.1:%[1]d"}
verify: {require_reference: false}
console: {listen: "127.0.0.1:%[2]d"}
operators:
  - {name: inst, password_file: inst.pw, roles: [%[8]s], cameras: [%[3]s, ptz]}
  - {name: boss, password_file: boss.pw, roles: [admin], cameras: [%[9]s], combined_roles_reason: site owner}
  - {name: viewer, password_file: viewer.pw, roles: [live-viewer], cameras: [%[3]s]}
cameras:
  - id: %[3]s
    purpose: p
    match: {serial: %[4]s}
    xaddr: %[5]s
    username: velo
    password_file: cam.pw
    approval: {by: A. Bianchi, date: 2026-01-01, document: DOC-1}
    masks:
      - {name: badge, polygon: [{x: 0.05, y: 0.05}, {x: 0.25, y: 0.05}, {x: 0.25, y: 0.25}, {x: 0.05, y: 0.25}]}
  - id: ptz
    purpose: p
    match: {serial: SER-CONS-PTZ}
    xaddr: %[6]s
    username: velo
    password_file: cam.pw
    ptz_lock: {interval: 200ms}
    presets:
      - {token: "1", position: {pan: 0, tilt: 0, zoom: 0}, approval: {by: A. Bianchi, date: 2026-01-01, document: DOC-P1}}
`

// siteText is the rig's site.yaml with the installer's roles and the
// admin's cameras (a reload that changes them ends their commissioning).
func (r *rig) siteText(instRoles, bossCameras string) string {
	return fmt.Sprintf(siteYAML, r.ports[0], r.ports[1], r.cam, r.serial, r.xaddrs[0], r.xaddrs[1], r.ports[2], instRoles, bossCameras)
}

func startRig(t *testing.T) *rig {
	t.Helper()
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "cons", Address: "127.0.96.17", Username: "velo", Password: "cam-pw",
		Serial: "SER-CONS", Scene: "badge", FPS: 10, Width: 320, Height: 240},
		camsim.CameraConfig{ID: "ptz", Address: "127.0.96.18", Username: "velo", Password: "cam-pw", Serial: "SER-CONS-PTZ", Scene: "ptz",
			FPS: 10, Width: 320, Height: 240, PTZ: &camsim.PTZConfig{PanTiltSpeed: 2, ZoomSpeed: 2, Presets: []camsim.PresetConfig{{Token: "1", Name: "home"}}}})
	cam := sim.Camera("cons")
	dir := t.TempDir()
	for name, pw := range map[string]string{"inst.pw": installerPW, "viewer.pw": viewerPW, "cam.pw": "cam-pw",
		// The admin signs MQTT commands: a credential line, not a plaintext password.
		"boss.pw": access.HashCredential("t", "boss", adminPW, 1, time.Now().Add(24*time.Hour))} {
		testkit.SecretFile(t, dir, name, pw+"\n")
	}
	r := &rig{dir: dir, cam: cam.ID(), ptz: "ptz", sim: sim, serial: cam.Config().Serial,
		ports: [3]int{testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)}, xaddrs: [2]string{cam.XAddr(), sim.Camera("ptz").XAddr()}}
	testkit.SecretFile(t, dir, "site.yaml", r.siteText("installer", "cons, ptz"))
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &movedClock{SystemClock: retention.NewSystemClock()}
	a := agent.New(cfg, zerolog.Nop(), agent.Options{Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(func() { r.stop() })
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range a.Events() {
				t.Logf("event %s %s %s %s", e.Kind, e.Operator, e.Camera, e.Detail)
			}
		}
	})
	testkit.WaitFor(t, 30*time.Second, "cameras streaming", func() bool {
		s, _ := a.State(cam.ID())
		p, _ := a.State(r.ptz)
		return s.Status == "streaming" && p.Status == "streaming"
	})
	r.a, r.url, r.clock, r.broker = a, a.ConsoleURL(), clk, fmt.Sprintf("tcp://127.0.0.1:%d", r.ports[2])
	r.rtsp = fmt.Sprintf("rtsp://viewer:%s@127.0.0.1:%d/%s", access.StreamPassword("t", "viewer", viewerPW, access.LegacyStreamGeneration), r.ports[0], cam.ID())
	if r.url == "" {
		t.Fatal("velo run serves no console")
	}
	return r
}

// browser is an HTTP client with a cookie jar, trusting the console's
// self-signed certificate.
type browser struct {
	t    *testing.T
	r    *rig
	c    *http.Client
	csrf string
}

func (r *rig) browser(t *testing.T) *browser { return r.browserFrom(t, "127.0.0.1") }

// browserFrom is a browser whose connections come from the loopback
// address from (a source of its own for throttling and bursts).
func (r *rig) browserFrom(t *testing.T, from string) *browser {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DialContext: d.DialContext}}
	b := &browser{t: t, r: r, c: c}
	b.session()
	return b
}

type sessionInfo struct {
	LoggedIn bool   `json:"logged_in"`
	User     string `json:"user"`
	CSRF     string `json:"csrf"`
}

// session fetches the session (and its CSRF token).
func (b *browser) session() sessionInfo {
	var s sessionInfo
	res := b.do("GET", "api/session", nil, "")
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	b.csrf = s.CSRF
	return s
}

func (b *browser) do(method, path string, body any, csrf string) *http.Response {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.r.url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// post sends a JSON POST with the CSRF token and returns the status and
// body.
func (b *browser) post(path string, body any) (int, []byte) {
	b.t.Helper()
	res := b.do("POST", path, body, b.csrf)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func (b *browser) get(path string) (int, []byte) {
	b.t.Helper()
	res := b.do("GET", path, nil, "")
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func (b *browser) login(user, pw string) int {
	b.t.Helper()
	code, body := b.post("api/login", map[string]string{"user": user, "password": pw})
	if code == http.StatusOK {
		var s sessionInfo
		_ = json.Unmarshal(body, &s)
		b.csrf = s.CSRF
	}
	return code
}

// events counts the agent's events of kind.
func (r *rig) events(kind event.Kind) []event.Event {
	var out []event.Event
	for _, e := range r.a.Events() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// grabFrames decodes n frames of Velo's RTSP output with ffmpeg, gray,
// at the camera's 320×240, retrying while the stream is (re)starting.
func (r *rig) grabFrames(t *testing.T, n int) [][]byte {
	t.Helper()
	frames, err := r.grab(n)
	if err != nil {
		t.Fatal(err)
	}
	return frames
}

func (r *rig) grab(n int) ([][]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", r.rtsp,
			"-frames:v", fmt.Sprint(n), "-vf", "scale=320:240,format=gray", "-f", "rawvideo", "-")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		var frames [][]byte
		for len(out) >= 320*240 {
			frames = append(frames, out[:320*240])
			out = out[320*240:]
		}
		if err == nil && len(frames) == n {
			return frames, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ffmpeg decoding Velo's output: %v, %d frames: %s", err, len(frames), stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}
