package telemetry

import (
	"sync"
	"testing"
	"time"

	"velo/internal/testkit"
)

// Producers that keep several saves in flight (EventAsync) share fsyncs
// and still get every event delivered once saved, in sequence order; the
// acknowledgements written by the committer empty the outbox. The stats
// go out on their own topic, QoS 0, not retained.
func TestPipelinedSavesDelivered(t *testing.T) {
	t.Parallel()
	const producers, each, window = 8, 150, 32
	b := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	col := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false)}, "velo/s/pipe/#")
	tel, ups, stop := runTelemetry(t, b.URL(false), nil, "pipe")
	testkit.WaitFor(t, 20*time.Second, "connected", func() bool { return ups.Load() > 0 })
	var wg sync.WaitGroup
	var mu sync.Mutex
	saved := map[uint64]bool{}
	for p := range producers {
		wg.Go(func() {
			var inflight []*Saving
			wait := func(s *Saving) {
				if err := s.Wait(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				saved[s.Seq()] = true
				mu.Unlock()
			}
			for i := range each {
				inflight = append(inflight, tel.EventAsync(map[string]int{"producer": p, "n": i}))
				if len(inflight) >= window {
					wait(inflight[0])
					inflight = inflight[1:]
				}
			}
			for _, s := range inflight {
				wait(s)
			}
		})
	}
	wg.Wait()
	if len(saved) != producers*each {
		t.Fatalf("%d distinct saved, want %d", len(saved), producers*each)
	}
	tel.SetStats(map[string]int{"uptime_s": 1})
	testkit.WaitFor(t, 60*time.Second, "every saved event delivered and the outbox emptied", func() bool {
		got := 0
		for _, m := range col.All() {
			if m.Topic == "velo/s/pipe/events" && saved[m.Seq] {
				got++
			}
		}
		return got >= len(saved) && tel.cfg.Outbox.Stats().Pending == 0
	})
	var last uint64
	stats := 0
	for _, m := range col.All() {
		switch m.Topic {
		case "velo/s/pipe/events":
			if m.Seq <= last {
				t.Fatalf("out of order: %d after %d", m.Seq, last)
			}
			last = m.Seq
		case "velo/s/pipe/stats":
			stats++
			if m.Retained || testkit.Field(m, "uptime_s") != "1" {
				t.Errorf("stats %s retained=%v", m.Payload, m.Retained)
			}
		}
	}
	testkit.WaitFor(t, 10*time.Second, "one stats message", func() bool {
		n := 0
		for _, m := range col.All() {
			if m.Topic == "velo/s/pipe/stats" {
				n++
			}
		}
		return n == 1
	})
	stop()
}
