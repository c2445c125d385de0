package attempts

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// accounted is how many attempts the reports stand for: one per first
// attempt, Count per summary.
func accounted(firsts int, sums []Summary) int {
	n := firsts
	for _, s := range sums {
		n += s.Count
	}
	return n
}

// A burst of 1,000 refused logins from one source with 1,000 user names:
// the first is reported at once, the rest in one summary when the burst
// goes quiet, with its times and a bounded list of names.
func TestBurstIsOneFirstAndOneSummary(t *testing.T) {
	g := New(Options{})
	firsts := 0
	for i := range 1000 {
		if g.Observe(t0.Add(time.Duration(i)*time.Millisecond), Attempt{Kind: "access_denied", Source: "192.0.2.7", Name: fmt.Sprint("user", i), Target: "cam"}) {
			firsts++
		}
	}
	if firsts != 1 {
		t.Fatalf("%d attempts reported on their own, want 1", firsts)
	}
	if s := g.Due(t0.Add(5 * time.Second)); len(s) != 0 {
		t.Fatalf("summarised while the burst goes on: %+v", s)
	}
	sums := g.Due(t0.Add(11 * time.Second))
	if len(sums) != 1 {
		t.Fatalf("summaries after the burst: %+v", sums)
	}
	s := sums[0]
	if s.Count != 999 || !s.First.Equal(t0.Add(time.Millisecond)) || !s.Last.Equal(t0.Add(999*time.Millisecond)) ||
		s.Source != "192.0.2.7" || !s.Alone || len(s.Names) != 8 || !s.More || len(s.Targets) != 1 || s.Names[0] != "user0" {
		t.Errorf("summary %+v", s)
	}
	if g.Tracked() != 0 {
		t.Errorf("%d bursts still tracked", g.Tracked())
	}
	if !g.Observe(t0.Add(time.Minute), Attempt{Kind: "access_denied", Source: "192.0.2.7"}) {
		t.Error("a new burst's first attempt is not reported")
	}
}

// A steady attack is summarised minute by minute: at most two reports per
// source and minute, and together they stand for every attempt.
func TestMinuteClosesALongBurst(t *testing.T) {
	g := New(Options{})
	firsts, sums := 0, []Summary(nil)
	for i := range 600 { // one attempt a second for ten minutes
		now := t0.Add(time.Duration(i) * time.Second)
		sums = append(sums, g.Due(now)...)
		if g.Observe(now, Attempt{Kind: "access_denied", Source: "192.0.2.7", Name: "ops"}) {
			firsts++
		}
	}
	sums = append(sums, g.Close()...)
	if got := accounted(firsts, sums); got != 600 {
		t.Errorf("the reports stand for %d attempts, not 600", got)
	}
	if firsts+len(sums) > 2*10+2 {
		t.Errorf("%d reports for ten minutes", firsts+len(sums))
	}
	for _, s := range sums {
		if s.Last.Sub(s.First) > time.Minute {
			t.Errorf("a summary spans %v", s.Last.Sub(s.First))
		}
	}
}

// A spoofed-source flood cannot grow the memory: 100,000 sources leave at
// most MaxSources bursts and one for the others, with bounded lists, at
// most MaxSources attempts are reported on their own, and the reports
// still stand for every attempt.
func TestSpoofedSourcesAreBounded(t *testing.T) {
	g := New(Options{})
	long := strings.Repeat("x", 4096)
	firsts := 0
	for i := range 100000 {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if g.Observe(t0.Add(time.Duration(i)*time.Microsecond), Attempt{Kind: "access_denied", Source: src, Name: long + src, Target: long}) {
			firsts++
		}
		if n := g.Tracked(); n > 32+1 {
			t.Fatalf("%d bursts tracked", n)
		}
	}
	if firsts != 32 {
		t.Errorf("%d attempts reported on their own, want 32", firsts)
	}
	sums := g.Due(t0.Add(time.Minute))
	if got := accounted(firsts, sums); got != 100000 {
		t.Errorf("the reports stand for %d attempts", got)
	}
	for _, s := range sums {
		if s.Source != OtherSources {
			continue
		}
		if len(s.Sources) != 8 || !s.More || s.Count != 100000-32 || s.Alone {
			t.Errorf("other sources: %d sources kept, more %v, count %d", len(s.Sources), s.More, s.Count)
		}
		for _, n := range append(s.Names, s.Targets...) {
			if len(n) > MaxValueLen {
				t.Fatalf("a value of %d bytes kept", len(n))
			}
		}
	}
}

// A burst ends when the clock is stepped back (it would otherwise wait
// for the clock to catch up), and Close ends every burst and lets the
// next attempts through on their own.
func TestClockStepAndClose(t *testing.T) {
	g := New(Options{})
	g.Observe(t0, Attempt{Kind: "k", Source: "a"})
	g.Observe(t0.Add(time.Second), Attempt{Kind: "k", Source: "a"})
	if s := g.Due(t0.Add(-time.Hour)); len(s) != 1 || s[0].Count != 1 {
		t.Errorf("after a step back: %+v", s)
	}
	g.Observe(t0, Attempt{Kind: "k", Source: "b"})
	g.Observe(t0, Attempt{Kind: "k", Source: "b"})
	if s := g.Close(); len(s) != 1 || s[0].Source != "b" {
		t.Errorf("close: %+v", s)
	}
	for range 3 {
		if !g.Observe(t0, Attempt{Kind: "k", Source: "b"}) {
			t.Error("an attempt after Close is not reported")
		}
	}
	var nilG *Aggregator
	if !nilG.Observe(t0, Attempt{}) || nilG.Due(t0) != nil {
		t.Error("a nil Aggregator does not report every attempt")
	}
}

func TestSource(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5554":            "127.0.0.1",
		"127.0.0.2":                 "127.0.0.2",
		"[::ffff:10.0.0.1]:554":     "10.0.0.1",
		"[2001:db8:1:2:3::9]:40000": "2001:db8:1:2::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not an address":            "not an address",
	} {
		if got := Source(in); got != want {
			t.Errorf("Source(%q) = %q, want %q", in, got, want)
		}
	}
}

// New sources arriving one by one, each gone quiet before the next, free
// their slot every time: still at most MaxSources attempts a minute are
// reported on their own, the rest in the summaries of "other sources".
func TestReportsOnTheirOwnPerMinuteAreBounded(t *testing.T) {
	g := New(Options{})
	firsts, sums := 0, []Summary(nil)
	perMinute := map[int]int{}
	for i := range 600 { // a new source every second for ten minutes
		now := t0.Add(time.Duration(i) * time.Second)
		sums = append(sums, g.Due(now)...)
		if g.Observe(now, Attempt{Kind: "access_denied", Source: fmt.Sprintf("10.0.%d.%d", i/250, i%250)}) {
			firsts++
			perMinute[i/60]++
		}
	}
	sums = append(sums, g.Close()...)
	for m, n := range perMinute {
		if n > 32 {
			t.Errorf("minute %d: %d attempts reported on their own", m, n)
		}
	}
	if got := accounted(firsts, sums); got != 600 {
		t.Errorf("the reports stand for %d attempts, not 600", got)
	}
}
