package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// The camera's password goes to the camera alone. A camera whose
// GetStreamUri names a rogue host that challenges with Basic (another
// loopback host, or another port of the camera's own address offering only
// Basic) gets no RTSP request with credentials from Velo, neither from its
// stream client nor from its own check; the refusal is reported
// (stream_refused, naming both hosts, never the password) and no frame of
// that camera goes out.
func TestStreamCredentialsGoOnlyToTheCamera(t *testing.T) {
	for _, tc := range []struct {
		name, camAddr, rogueHost, reason string
	}{
		{"stream URI names another host", "127.0.95.40", "127.0.0.2", "host_mismatch"},
		{"the camera's own address offers only Basic", "127.0.95.41", "127.0.95.41", "basic_only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rogue := testkit.StartRogueRTSP(t, tc.rogueHost, `Basic realm="cam"`)
			sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "r", Address: tc.camAddr, Username: "velo", Password: "cam-pw",
				Serial: "SER-R", FPS: 5, Width: 320, Height: 180, Quirk: camsim.QuirkConfig{WrongStreamHost: rogue.Addr}})
			var logs lockedLog
			a := startOnCamera(t, sim.Camera("r"), &logs)
			testkit.WaitFor(t, 30*time.Second, "stream_refused or credentials at the rogue", func() bool {
				return len(viewEvents(a, event.StreamRefused)) > 0 || len(rogue.Authorizations()) > 0
			})
			time.Sleep(3 * time.Second) // time for a stream client, had one been started, to answer the challenge
			got := rogue.Authorizations()
			distinct := map[string]int{}
			for _, h := range got {
				distinct[h]++
			}
			t.Logf("FIGURES %s: the rogue listener at %s received %d requests, %d with an Authorization header %v",
				tc.name, rogue.Addr, len(rogue.Requests()), len(got), distinct)
			if len(got) != 0 {
				t.Errorf("credentials reached the rogue listener: %v", distinct)
			}
			if len(viewEvents(a, event.StreamRefused)) == 0 {
				t.Fatal("no stream_refused event")
			}
			ev := viewEvents(a, event.StreamRefused)[0]
			if ev.Camera != "r" || ev.Stream == nil || ev.Stream.Reason != tc.reason || ev.Stream.NamedHost != rogue.Addr || ev.Stream.PinnedHost != tc.camAddr {
				t.Errorf("event: %+v %+v, want camera r, reason %s, named %s, pinned %s", ev, ev.Stream, tc.reason, rogue.Addr, tc.camAddr)
			}
			for _, e := range a.Events() {
				if strings.Contains(fmt.Sprintf("%+v %+v", e, e.Stream), "cam-pw") {
					t.Errorf("the camera password is in an event: %+v", e)
				}
			}
			if l := logs.String(); strings.Contains(l, "cam-pw") || !strings.Contains(l, "stream_refused") {
				t.Errorf("log: the password, or no stream_refused:\n%s", l)
			}
			if s, _ := a.State("r"); s.Status != "offline" || !strings.Contains(s.Error, "stream refused, credentials not sent") {
				t.Errorf("state: %+v, want offline, no frame out, the refusal as its error", s)
			}
			if rel := a.relayForTest(); rel != nil && rel.Publishing("r") {
				t.Error("the relay publishes the refused camera")
			}
		})
	}
}

// lockedLog collects the agent's log lines.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOnCamera runs the agent on one simulated camera (fixed, one masked
// view, no reference), logging to log.
func startOnCamera(t *testing.T, cam *camsim.Camera, log io.Writer) *Agent {
	t.Helper()
	dir := t.TempDir()
	testkit.SecretFile(t, dir, "ops.pw", "ops-pw\n")
	testkit.SecretFile(t, dir, "cam.pw", "cam-pw\n")
	testkit.SecretFile(t, dir, "site.yaml", fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "%s"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [%s]}
cameras:
  - id: %s
    purpose: p
    match: {serial: %s}
    xaddr: %s
    username: velo
    password_file: cam.pw
    approval: {by: A, date: 2026-01-01, document: D}
    masks:
      - name: m
        polygon: [{x: 0.1, y: 0.1}, {x: 0.3, y: 0.1}, {x: 0.3, y: 0.3}]
`, net.JoinHostPort("127.0.0.1", fmt.Sprint(testkit.FreePort(t))), cam.ID(), cam.ID(), cam.Config().Serial, cam.XAddr()))
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.New(log), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range a.Events() {
				t.Logf("event %s %s %+v", e.Kind, e.Detail, e.Stream)
			}
		}
	})
	return a
}
