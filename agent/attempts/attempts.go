// Package attempts summarises what untrusted peers try again and again —
// refused live logins, devices announced by WS-Discovery — so that a
// flood cannot fill the audit log (kept six months, every entry fsynced)
// or the MQTT outbox, while the record that it happened stays.
//
// Attempts are grouped per kind and source into bursts. The first attempt
// of a burst is reported at once, on its own; the rest are counted, and
// the burst is reported once more, as one Summary, when it ends (Quiet
// without an attempt) or its minute closes (Window after its first
// attempt). A summary carries the count, the first and last time, and a
// few distinct names and targets.
//
// Memory and reports stay bounded whatever the peers send: at most
// MaxSources bursts are tracked at once and at most MaxSources attempts
// are reported on their own per Window (attempts from any further source
// share one burst per kind, OtherSources, which keeps a few of their
// addresses and is reported in its summary only), and a burst keeps a
// count, two times and at most MaxNames distinct values of at most
// MaxValueLen bytes per list.
package attempts

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// OtherSources is the source of the burst that gathers the attempts of
// sources beyond MaxSources.
const OtherSources = "other sources"

// MaxValueLen bounds every name, target and source a burst keeps (longer
// ones are cut; callers should have bounded them already).
const MaxValueLen = 256

// The defaults of Options.
const (
	DefaultWindow     = time.Minute
	DefaultQuiet      = 10 * time.Second
	DefaultMaxSources = 32
	DefaultMaxNames   = 8
)

// Options bound the aggregation; zero values take the defaults.
type Options struct {
	// Window is the longest a burst runs before it is summarised: its
	// minute.
	Window time.Duration
	// Quiet ends a burst: this long without an attempt.
	Quiet time.Duration
	// MaxSources is how many bursts are tracked at once, and how many
	// attempts are reported on their own per Window.
	MaxSources int
	// MaxNames is how many distinct names, targets and sources a burst
	// keeps.
	MaxNames int
}

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.MaxSources <= 0 {
		o.MaxSources = DefaultMaxSources
	}
	if o.MaxNames <= 0 {
		o.MaxNames = DefaultMaxNames
	}
}

// Attempt is one thing a peer tried.
type Attempt struct {
	Kind   string // what was attempted, e.g. "access_denied"
	Source string // who tried: Source(remote address)
	Name   string // the user or device the peer named
	Target string // what it asked for (a camera), or ""
}

// Summary reports the attempts of a burst after its first one (which was
// reported on its own, see Alone).
type Summary struct {
	Kind   string
	Source string // the source, or OtherSources
	// Count is how many attempts the summary stands for; First and Last
	// are the times of the first and the last of them.
	Count       int
	First, Last time.Time
	// Names and Targets are the distinct names and targets of the whole
	// burst, Sources (OtherSources only) its distinct sources, in the
	// order first seen; More says that some did not fit.
	Names, Targets, Sources []string
	More                    bool
	// Alone says that the burst's first attempt was reported on its own
	// (not so for an OtherSources burst started when no such report was
	// left in its minute: Count is then every attempt).
	Alone bool
}

type key struct{ kind, source string }

// burst is what is kept of one source's attempts.
type burst struct {
	start, last time.Time // of the whole burst
	sum         Summary
}

// Aggregator groups attempts into bursts. It is safe for concurrent use.
// A nil *Aggregator reports every attempt on its own.
type Aggregator struct {
	opts   Options
	mu     sync.Mutex
	bursts map[key]*burst
	closed bool
	// firsts counts the attempts reported on their own since minute.
	firsts int
	minute time.Time
}

// New returns an Aggregator bounded by o.
func New(o Options) *Aggregator {
	o.defaults()
	return &Aggregator{opts: o, bursts: map[key]*burst{}}
}

// Observe counts an attempt made at now and reports whether it is the
// first of its burst, to be reported at once; false means it is counted
// in the burst's summary.
func (g *Aggregator) Observe(now time.Time, at Attempt) (first bool) {
	if g == nil {
		return true
	}
	at.Name, at.Target, at.Source = cut(at.Name), cut(at.Target), cut(at.Source)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return true
	}
	if now.Sub(g.minute) >= g.opts.Window || now.Before(g.minute) {
		g.minute, g.firsts = now, 0
	}
	k := key{at.Kind, at.Source}
	b := g.bursts[k]
	if b == nil && (g.tracked() >= g.opts.MaxSources || g.firsts >= g.opts.MaxSources) {
		k.source = OtherSources
		b = g.bursts[k]
	}
	switch {
	case b == nil && g.firsts < g.opts.MaxSources:
		b = &burst{start: now, last: now, sum: Summary{Kind: at.Kind, Source: k.source, Alone: true}}
		g.bursts[k] = b
		g.firsts++
		first = true
	case b == nil: // other sources, with no report of its own left this minute
		b = &burst{start: now, last: now, sum: Summary{Kind: at.Kind, Source: k.source, Count: 1, First: now, Last: now}}
		g.bursts[k] = b
	default:
		if b.sum.Count == 0 {
			b.sum.First = now
		}
		b.sum.Count++
		b.sum.Last, b.last = now, now
	}
	m := g.opts.MaxNames
	b.sum.Names = addDistinct(b.sum.Names, at.Name, m, &b.sum.More)
	b.sum.Targets = addDistinct(b.sum.Targets, at.Target, m, &b.sum.More)
	if k.source == OtherSources {
		b.sum.Sources = addDistinct(b.sum.Sources, at.Source, m, &b.sum.More)
	}
	return first
}

// tracked is how many bursts count against MaxSources (the OtherSources
// bursts do not). g.mu is held.
func (g *Aggregator) tracked() int {
	n := 0
	for k := range g.bursts {
		if k.source != OtherSources {
			n++
		}
	}
	return n
}

// Due ends the bursts that are over at now (quiet for Quiet, or started
// Window ago, or stamped after now: the clock was stepped back) and
// returns the summaries of those with attempts beyond their first, oldest
// first.
func (g *Aggregator) Due(now time.Time) []Summary {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.end(func(b *burst) bool {
		return now.Sub(b.last) >= g.opts.Quiet || now.Sub(b.start) >= g.opts.Window || now.Before(b.last)
	})
}

// Close ends every burst and returns their summaries; from then on every
// attempt is reported on its own (nothing would summarise it).
func (g *Aggregator) Close() []Summary {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return g.end(func(*burst) bool { return true })
}

// Tracked is how many bursts are open (OtherSources included).
func (g *Aggregator) Tracked() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.bursts)
}

// end removes the bursts over says are over and returns the summaries of
// those with attempts beyond their first. g.mu is held.
func (g *Aggregator) end(over func(*burst) bool) []Summary {
	var out []Summary
	for k, b := range g.bursts {
		if !over(b) {
			continue
		}
		delete(g.bursts, k)
		if b.sum.Count > 0 {
			out = append(out, b.sum)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].First.Equal(out[j].First) {
			return out[i].First.Before(out[j].First)
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// addDistinct appends v to list unless it is empty or already there;
// when the list is full it sets *more instead.
func addDistinct(list []string, v string, max int, more *bool) []string {
	if v == "" {
		return list
	}
	for _, x := range list {
		if x == v {
			return list
		}
	}
	if len(list) >= max {
		*more = true
		return list
	}
	return append(list, v)
}

// cut bounds a value the burst keeps, at a UTF-8 boundary.
func cut(s string) string {
	if len(s) <= MaxValueLen {
		return s
	}
	i := MaxValueLen
	for i > 0 && s[i]&0xc0 == 0x80 {
		i--
	}
	return s[:i]
}

// Source is the source an attempt from addr (an IP, with or without a
// port) counts against: the IP; for IPv6, its /64, which one host
// usually owns whole. An address that does not parse is kept as given.
func Source(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	ip := ap.Addr()
	if err != nil {
		if ip, err = netip.ParseAddr(addr); err != nil {
			return cut(addr)
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}
