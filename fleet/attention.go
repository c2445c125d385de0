package fleet

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"velo/agent/event"
)

// What needs attention, one state per finding (velo fleet status --state).
const (
	AttnOffline   = "offline"    // the gateway is offline, or the camera is
	AttnBlank     = "blank"      // off its approved view: its output is blank
	AttnVideoLost = "video-lost" // connected, no frame captured
	AttnDrifting  = "drifting"   // the last tamper-like event was a PTZ drift or unknown position
	AttnTamper    = "tamper"     // a tamper-like event within thresholds.tamper_window
	AttnAudit     = "audit"      // audit head missing, rewound, forked or its key changed
	AttnOutbox    = "outbox"     // the gateway's outbox dropped events
	AttnClock     = "clock"      // the gateway's clock is not synchronised
)

// AttnStates lists them, for flags and docs.
var AttnStates = []string{AttnOffline, AttnBlank, AttnVideoLost, AttnDrifting, AttnTamper, AttnAudit, AttnOutbox, AttnClock}

// Finding is one row of `velo fleet status`.
type Finding struct {
	Site    string    `json:"site"`
	Gateway string    `json:"gateway"`
	Camera  string    `json:"camera,omitempty"`
	State   string    `json:"state"`
	Since   time.Time `json:"since"`
	Detail  string    `json:"detail,omitempty"`
}

// Filter selects findings; empty fields select all.
type Filter struct {
	Site  string
	State string
}

// Attention lists what needs attention at now, oldest first.
func (s *State) Attention(now time.Time, th Thresholds, f Filter) []Finding {
	s.mu.RLock()
	var out []Finding
	for _, g := range s.gateways {
		if f.Site != "" && g.site != f.Site {
			continue
		}
		out = append(out, g.findings(now, th)...)
	}
	s.mu.RUnlock()
	if f.State != "" {
		out = slices.DeleteFunc(out, func(x Finding) bool { return x.State != f.State })
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.Site+"/"+a.Gateway+"/"+a.Camera+"/"+a.State < b.Site+"/"+b.Gateway+"/"+b.Camera+"/"+b.State
	})
	return out
}

// findings of one gateway (the caller holds the read lock).
func (g *gateway) findings(now time.Time, th Thresholds) []Finding {
	row := func(camera, state string, since time.Time, detail string) Finding {
		return Finding{Site: g.site, Gateway: g.name, Camera: camera, State: state, Since: since, Detail: detail}
	}
	var out []Finding
	if g.status == "offline" {
		out = append(out, row("", AttnOffline, g.since, "gateway offline: "+g.reason))
		return out // its cameras' last states are stale
	}
	out = append(out, g.auditFindings(now, th, row)...)
	if st := g.stats; st != nil && now.Sub(g.statsAt) <= th.StatsMaxAge.D() {
		if !st.ClockSynced {
			out = append(out, row("", AttnClock, g.statsAt, "clock not synchronised"))
		}
	}
	if d := g.dropped(); d > 0 {
		out = append(out, row("", AttnOutbox, g.lastSeen, fmt.Sprintf("outbox dropped %d events", d)))
	}
	for _, c := range g.cams {
		out = append(out, c.findings(now, th, row)...)
	}
	return out
}

// dropped is the gateway's outbox drop count, from stats or status.
func (g *gateway) dropped() uint64 {
	if g.stats != nil && uint64(g.stats.OutboxDropped) > g.outboxDrop {
		return uint64(g.stats.OutboxDropped)
	}
	return g.outboxDrop
}

type rowFunc func(camera, state string, since time.Time, detail string) Finding

func (g *gateway) auditFindings(now time.Time, th Thresholds, row rowFunc) []Finding {
	a := g.audit
	switch {
	case a.incidents > 0 && now.Sub(a.lastIncident) <= th.TamperWindow.D():
		return []Finding{row("", AttnAudit, a.lastIncident, a.incident)}
	case g.status == "online" && a.at.IsZero() && now.Sub(g.since) > th.AuditHeadMaxAge.D():
		return []Finding{row("", AttnAudit, g.since, "no audit head received")}
	case g.status == "online" && !a.at.IsZero() && now.Sub(a.at) > th.AuditHeadMaxAge.D():
		return []Finding{row("", AttnAudit, a.at, fmt.Sprintf("no audit head since seq %d", a.seq))}
	}
	return nil
}

func (c *camera) findings(now time.Time, th Thresholds, row rowFunc) []Finding {
	var out []Finding
	switch c.status {
	case "blank":
		detail := "off its approved view: output blank"
		if c.preset != "" {
			detail += " (preset " + c.preset + ")"
		}
		out = append(out, row(c.id, AttnBlank, c.since, detail))
	case "video-lost":
		out = append(out, row(c.id, AttnVideoLost, c.since, "no frame captured"))
	case "offline":
		out = append(out, row(c.id, AttnOffline, c.since, strings.TrimSpace("camera offline "+c.err)))
	}
	if c.tampers > 0 && now.Sub(c.lastTamper) <= th.TamperWindow.D() {
		state := AttnTamper
		if c.tamperKind == event.Drift || c.tamperKind == event.PositionUnknown {
			state = AttnDrifting
		}
		out = append(out, row(c.id, state, c.lastTamper, fmt.Sprintf("%s (%d tamper-like events)", c.tamperKind, c.tampers)))
	}
	return out
}

// GatewayReport is one gateway's delivery figures (the API's
// /api/v1/gateways; the scale test checks events lost and duplicated).
type GatewayReport struct {
	Site         string `json:"site"`
	Gateway      string `json:"gateway"`
	Status       string `json:"status"`
	Cameras      int    `json:"cameras"`
	Events       uint64 `json:"events"`     // accepted after dedupe
	Duplicates   uint64 `json:"duplicates"` // dropped by seq
	LastEventSeq uint64 `json:"last_event_seq"`
	AuditSeq     uint64 `json:"audit_seq,omitempty"`
	AuditKey     string `json:"audit_key,omitempty"`
	Incidents    uint64 `json:"audit_incidents,omitempty"`
	SeqResets    uint64 `json:"seq_resets,omitempty"`
}

// Gateways reports every tracked gateway, sorted.
func (s *State) Gateways() []GatewayReport {
	s.mu.RLock()
	out := make([]GatewayReport, 0, len(s.gateways))
	for _, g := range s.gateways {
		out = append(out, GatewayReport{Site: g.site, Gateway: g.name, Status: g.status, Cameras: len(g.cams),
			Events: g.events, Duplicates: g.dups, LastEventSeq: g.seq["events"],
			AuditSeq: g.audit.seq, AuditKey: g.audit.key, Incidents: g.audit.incidents, SeqResets: g.resets})
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].Site+"/"+out[i].Gateway < out[j].Site+"/"+out[j].Gateway
	})
	return out
}

// latencyRing keeps the last event-to-fleet latencies for quantiles.
type latencyRing struct {
	buf  []time.Duration
	next int
}

const latencySamples = 1 << 16

func (r *latencyRing) add(d time.Duration) {
	if len(r.buf) < latencySamples {
		r.buf = append(r.buf, d)
		return
	}
	r.buf[r.next] = d
	r.next = (r.next + 1) % latencySamples
}

// Latency is the p50 and p99 of the last 65,536 event latencies (the time
// from the gateway's envelope time to the fleet receiving it).
func (s *State) Latency() (p50, p99 time.Duration, n int) {
	s.mu.RLock()
	xs := slices.Clone(s.latency.buf)
	s.mu.RUnlock()
	if len(xs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(xs)
	q := func(p float64) time.Duration { return xs[min(len(xs)-1, int(p*float64(len(xs))))] }
	return q(0.50), q(0.99), len(xs)
}

// ResetLatency forgets the samples (a benchmark phase starts).
func (s *State) ResetLatency() {
	s.mu.Lock()
	s.latency = latencyRing{}
	s.mu.Unlock()
}
