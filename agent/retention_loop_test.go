package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/retention"
	"velo/internal/testkit"
	"velo/masking"
)

// steppedClock is a test clock whose wall and monotonic readings move
// only when the test advances them.
type steppedClock struct{ wall, mono atomic.Int64 }

func (c *steppedClock) Now() time.Time          { return time.Unix(0, c.wall.Load()).UTC() }
func (c *steppedClock) Mono() time.Duration     { return time.Duration(c.mono.Load()) }
func (c *steppedClock) Synced() bool            { return false }
func (c *steppedClock) advance(d time.Duration) { c.wall.Add(int64(d)); c.mono.Add(int64(d)) }
func (c *steppedClock) segmentName(cam string, at time.Time) string {
	return cam + "_" + at.UTC().Format(masking.SegmentTimeFormat) + ".mkv"
}

// G-3.4, ER-4.5 through a running agent (its sweeper loop, on the test
// clock, retention 1 h): segments past their retention disappear, a held
// one stays; while the holds file is unreadable nothing is deleted and a
// retention_error says so, once; the segment the recorder of ingresso.1
// is writing is left alone and the finished one is sealed as ingresso.1's.
func TestG34_SweeperLoopOfARunningAgent(t *testing.T) {
	clk := &steppedClock{}
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clk.wall.Store(t0.UnixNano())
	dir := t.TempDir()
	rec, state := filepath.Join(dir, "rec"), filepath.Join(dir, "state")
	cfg := loadSweeperSite(t, dir)

	// Segments sealed by an earlier run: two 2 h old (one held), one fresh.
	st, _, err := retention.Open(rec, state, clk)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(at time.Time) retention.Segment {
		p := filepath.Join(rec, clk.segmentName("ingresso.1", at))
		os.WriteFile(p, []byte("masked video"), 0o600)
		g, err := st.Seal(p, "ingresso.1", at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	old, held := seal(t0), seal(t0.Add(time.Minute))
	clk.advance(2 * time.Hour)
	fresh := seal(clk.Now().Add(-time.Minute))
	if err := retention.SetHold(rec, state, retention.Hold{Segment: held.Name, Ref: "R.G. 7/2026", By: "exp", At: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	// The recorder of ingresso.1 finished one segment and writes the next.
	finished, writing := clk.Now().Add(-20*time.Second), clk.Now().Add(-10*time.Second)
	for _, at := range []time.Time{finished, writing} {
		os.WriteFile(filepath.Join(rec, clk.segmentName("ingresso.1", at)), []byte("masked video"), 0o600)
	}

	a := New(cfg, zerolog.Nop(), Options{Clock: clk, SweepInterval: 50 * time.Millisecond})
	a.recs["ingresso.1"] = true // as startRecorder marks it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	exists := func(g retention.Segment) bool {
		_, err := os.Stat(filepath.Join(rec, g.Name))
		return !errors.Is(err, os.ErrNotExist)
	}
	deletedEvent := func(g retention.Segment) bool {
		for _, ev := range a.Events() {
			if ev.Kind == event.RetentionDel && ev.Ref == g.Name && ev.Camera == "ingresso.1" {
				return true
			}
		}
		return false
	}
	testkit.WaitFor(t, 20*time.Second, "the expired segment deleted", func() bool { return !exists(old) && deletedEvent(old) })
	if !exists(held) || !exists(fresh) {
		t.Fatalf("held %v, fresh %v: want both kept", exists(held), exists(fresh))
	}
	checkRecorderSegments(t, a, rec, clk.segmentName("ingresso.1", finished), clk.segmentName("ingresso.1", writing))

	clk.advance(time.Hour) // the fresh one expires while the agent runs
	testkit.WaitFor(t, 20*time.Second, "the second segment deleted by the loop", func() bool { return !exists(fresh) && deletedEvent(fresh) })
	if !exists(held) {
		t.Fatal("the held segment was deleted")
	}

	holdsUnreadableDeletesNothing(t, a, state, clk, held, exists)
}

// checkRecorderSegments: the finished segment is sealed as ingresso.1's,
// with its 1 h retention; the one being written is still plaintext.
func checkRecorderSegments(t *testing.T, a *Agent, rec, finished, writing string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(rec, writing)); err != nil {
		t.Errorf("the segment being written was sealed: %v", err)
	}
	_, st, _ := a.compliance()
	var found bool
	for _, g := range st.Segments() {
		if g.Name == strings.TrimSuffix(finished, ".mkv")+retention.SealedExt {
			found = g.Camera == "ingresso.1"
		}
	}
	if !found {
		t.Errorf("the finished segment %s was not sealed as ingresso.1's", finished)
	}
}

// holdsUnreadableDeletesNothing corrupts the holds file while the agent
// runs: the held segment, past its retention, survives, and one
// retention_error names the cause; once the file is readable again (and
// the hold released) the segment goes.
func holdsUnreadableDeletesNothing(t *testing.T, a *Agent, state string, clk *steppedClock, held retention.Segment, exists func(retention.Segment) bool) {
	t.Helper()
	holds := filepath.Join(state, "holds.json")
	if err := os.WriteFile(holds, []byte(`[{"segment": `), 0o600); err != nil {
		t.Fatal(err)
	}
	errorEvents := func() int {
		n := 0
		for _, ev := range a.Events() {
			if ev.Kind == event.RetentionError && strings.Contains(ev.Detail, "holds") {
				n++
			}
		}
		return n
	}
	time.Sleep(500 * time.Millisecond) // ten sweeps
	if !exists(held) {
		t.Fatal("a held segment was deleted while the holds file was unreadable")
	}
	testkit.WaitFor(t, 20*time.Second, "a retention_error about the holds", func() bool { return errorEvents() > 0 })
	if n := errorEvents(); n != 1 {
		t.Errorf("%d retention_error events for one unreadable holds file, want 1", n)
	}
	if err := os.WriteFile(holds, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "the released segment deleted", func() bool { return !exists(held) })
}

func loadSweeperSite(t *testing.T, dir string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is about retention
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d", record_dir: rec}
cameras:
  - id: ingresso.1
    purpose: entrance
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SER-R}
    xaddr: http://127.0.0.1:%d/onvif/device_service
    record: {enabled: true, segment: 10s, retention: 1h}
`, testkit.FreePort(t), testkit.FreePort(t))
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
