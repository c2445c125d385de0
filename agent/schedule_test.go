package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// G-4.3 end to end: outside its hours the camera is not read at all (no
// ONVIF request, no stream), its state is scheduled-off with the next
// start, and scheduled_off/scheduled_on events are emitted; within its
// hours it streams masked video; when the hours end the stream stops.
func TestG43_ScheduledOffStopsTheCamera(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "s", Address: "127.0.95.9", Username: "velo", Password: "cam-pw", Serial: "SER-S",
		Scene: "badge", FPS: 10, Width: 320, Height: 180})
	port := testkit.FreePort(t)
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
operators:
  - {name: ops, password_file: ops.pw, roles: [live-viewer], cameras: [s]}
cameras:
  - id: s
    purpose: school yard, only while closed
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SER-S}
    xaddr: %s
    username: velo
    password_file: cam.pw
    schedule: {timezone: Europe/Rome, weekly: {wed: ["18:00-24:00"]}}
`, port, sim.Camera("s").XAddr())
	dir := t.TempDir()
	for name, s := range map[string]string{"ops.pw": "ops-pw\n", "cam.pw": "cam-pw\n", "site.yaml": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rome, _ := time.LoadLocation("Europe/Rome")
	var clock atomic.Int64 // the schedule's clock, moved by the test
	set := func(s string) {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, rome)
		if err != nil {
			t.Fatal(err)
		}
		clock.Store(tm.UnixNano())
	}
	set("2026-11-25 12:00") // a Wednesday, before the hours
	a := New(cfg, zerolog.Nop(), Options{ScheduleTick: 50 * time.Millisecond, Clock: movedClock{retention.NewSystemClock(), &clock}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(what string, f func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if f() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	events := func(kind event.Kind) []event.Event {
		var out []event.Event
		for _, ev := range a.Events() {
			if ev.Kind == kind && ev.Camera == "s" {
				out = append(out, ev)
			}
		}
		return out
	}
	wait("scheduled-off state", func() bool { s, _ := a.State("s"); return s.Status == "scheduled-off" })
	s, _ := a.State("s")
	if s.NextOn == nil || !s.NextOn.Equal(time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("next_on %v, want 18:00 Rome", s.NextOn)
	}
	if ev := events(event.ScheduledOff); len(ev) != 1 || !strings.Contains(ev[0].Detail, "on again at 2026-11-25 18:00 CET") {
		t.Errorf("scheduled_off events %+v", ev)
	}
	time.Sleep(time.Second)
	if n := sim.Camera("s").Requests(); n != 0 {
		t.Errorf("the camera was contacted %d times outside its hours", n)
	}
	if _, ok := a.liveAllowed("ops", "s"); ok {
		t.Error("live view allowed outside the hours")
	}
	set("2026-11-25 18:00")
	wait("streaming", func() bool {
		s, _ := a.State("s")
		return s.Status == "streaming" && a.relayForTest().Publishing("s")
	})
	if len(events(event.ScheduledOn)) != 1 {
		t.Errorf("scheduled_on events %+v", events(event.ScheduledOn))
	}
	y := camsim.GrabLuma(t, fmt.Sprintf("rtsp://ops:%s@127.0.0.1:%d/s", access.StreamPassword("t", "ops", "ops-pw", access.LegacyStreamGeneration), port), 320, 180, 3)
	if len(y) != 320*180 {
		t.Fatalf("grabbed %d bytes", len(y))
	}
	set("2026-11-26 00:00") // Thursday: off
	wait("scheduled-off again, stream stopped", func() bool {
		s, _ := a.State("s")
		return s.Status == "scheduled-off" && !a.relayForTest().Publishing("s")
	})
	if ev := events(event.ScheduledOff); len(ev) != 2 || !strings.Contains(ev[1].Detail, "2026-12-02 18:00") {
		t.Errorf("second scheduled_off %+v", ev)
	}
	if len(events(event.CameraOffline)) != 0 {
		t.Errorf("a scheduled stop was reported as a failure: %+v", events(event.CameraOffline))
	}
	n := sim.Camera("s").Requests()
	time.Sleep(time.Second)
	if m := sim.Camera("s").Requests(); m != n {
		t.Errorf("the camera was contacted %d times after its hours ended", m-n)
	}
}

// movedClock is the system clock with its wall time set by the test.
type movedClock struct {
	*retention.SystemClock
	unixNano *atomic.Int64
}

func (c movedClock) Now() time.Time { return time.Unix(0, c.unixNano.Load()) }
