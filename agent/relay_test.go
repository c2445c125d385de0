package agent

import (
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
)

// A relay listener out of file descriptors is logged (the relay retries);
// one stopped for good is a relay_stopped event as well.
func TestRelayListenerErrorsReported(t *testing.T) {
	cfg, err := config.Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	a := New(cfg, zerolog.New(&syncWriter{b: &logs}), Options{})
	a.relayListenerError("127.0.0.1:18654", syscall.EMFILE, false)
	for _, ev := range a.Events() {
		if ev.Kind == event.RelayStopped {
			t.Fatalf("a temporary accept error became an event: %+v", ev)
		}
	}
	if !strings.Contains(logs.String(), "retrying with backoff") {
		t.Fatalf("no log line for the temporary error: %s", logs.String())
	}
	a.relayListenerError("127.0.0.1:18654", syscall.EINVAL, true)
	var got []event.Event
	for _, ev := range a.Events() {
		if ev.Kind == event.RelayStopped {
			got = append(got, ev)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0].Detail, "127.0.0.1:18654") {
		t.Fatalf("relay_stopped events: %+v", got)
	}
	if !strings.Contains(logs.String(), `"relay_stopped"`) {
		t.Fatalf("relay_stopped not logged: %s", logs.String())
	}
}
