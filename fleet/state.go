package fleet

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"velo/agent/event"
	"velo/internal/camid"
)

// Camera statuses a gateway reports in cameras/<id>/state
// (docs/schemas/state.schema.json).
var cameraStatuses = []string{"starting", "streaming", "blank", "video-lost", "offline", "scheduled-off"}

// tamperKinds are the events that say someone may have moved, covered or
// reconfigured a camera.
var tamperKinds = map[event.Kind]bool{
	event.TamperSuspected: true, event.Drift: true, event.PositionUnknown: true,
	event.ViewMismatch: true, event.CameraMasksChanged: true, event.CameraMasksMissing: true,
}

// State is the fleet's view of every gateway and camera, fed one MQTT
// message at a time by Handle. Safe for concurrent use.
type State struct {
	limits Limits
	log    zerolog.Logger

	mu       sync.RWMutex
	gateways map[gwKey]*gateway
	cameras  int
	counts   Counts
	latency  latencyRing
	hist     prometheus.Histogram
	pins     map[gwKey]Pin       // audit pins loaded from state_file
	sites    map[string][]string // gateway name → the site ids it is tracked under
	// onEvent, if set, is called (without the lock) for every event
	// accepted after dedupe: tests and the scale bench count them.
	onEvent func(site, gw string, seq uint64, kind event.Kind, latency time.Duration)
}

// Counts are the fleet's own counters.
type Counts struct {
	Messages   uint64 `json:"messages"`   // MQTT messages received
	Duplicates uint64 `json:"duplicates"` // dropped: seq not above the last of its topic
	Invalid    uint64 `json:"invalid"`    // dropped: bad topic, JSON or envelope
	RefusedGW  uint64 `json:"refused_gateways"`
	RefusedCam uint64 `json:"refused_cameras"`
	// One gateway's share: a camera beyond max_cameras_per_gateway, a
	// gateway name under more site ids than max_sites_per_gateway.
	RefusedGWCam  uint64 `json:"refused_gateway_cameras"`
	RefusedGWSite uint64 `json:"refused_gateway_sites"`
	Events        uint64 `json:"events"` // events accepted after dedupe
}

type gwKey struct{ site, gw string }

type gateway struct {
	site, name string
	status     string // online, offline; "" before any status
	reason     string
	since      time.Time // status last changed
	lastSeen   time.Time
	seq        map[string]uint64 // topic (status, stats, events, cam/<id>) → highest seq
	cams       map[string]*camera
	stats      *gatewayStats
	statsAt    time.Time
	outboxDrop uint64 // from status
	audit      auditChain
	events     uint64 // accepted
	dups       uint64
	statusTime time.Time // envelope time of the last status accepted
	resets     uint64    // seq resets (a gateway whose state directory was lost)
}

type camera struct {
	id          string
	status      string
	online      bool
	approved    bool
	preset, err string
	since       time.Time
	lastTamper  time.Time
	tamperKind  event.Kind
	tampers     uint64
	videoLost   uint64
	stats       *cameraStats
}

// gatewayStats and cameraStats are the stats topic's payload.
type gatewayStats struct {
	CPUSeconds    float64  `json:"cpu_seconds"`
	RSSBytes      float64  `json:"rss_bytes"`
	TempC         *float64 `json:"temp_c,omitempty"`
	OutboxDepth   float64  `json:"outbox_depth"`
	OutboxDropped float64  `json:"outbox_dropped"`
	ClockSynced   bool     `json:"clock_synced"`
	UptimeS       float64  `json:"-"`
}

type cameraStats struct {
	ID             string  `json:"id"`
	Status         string  `json:"status"`
	FramesIn       float64 `json:"frames_in"`
	FramesOut      float64 `json:"frames_out"`
	Dropped        float64 `json:"dropped"`
	Blanked        float64 `json:"blanked"`
	ViewMismatches float64 `json:"view_mismatches"`
	FPSIn          float64 `json:"fps_in"`
	FPSOut         float64 `json:"fps_out"`
}

// NewState makes an empty fleet state with these limits.
func NewState(l Limits, log zerolog.Logger) *State {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "velo_fleet_event_latency_seconds",
		Help:    "Time from an event's envelope time on the gateway to the fleet receiving it.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}})
	return &State{limits: l.withDefaults(), log: log, gateways: map[gwKey]*gateway{}, sites: map[string][]string{}, hist: h}
}

// errRefused: the gateway or camera would exceed the limits.
var errRefused = errors.New("limit reached")

// envelope is every field the fleet reads from any payload.
type envelope struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Site    string    `json:"site"`
	Gateway string    `json:"gateway"`
	// status
	State  string `json:"state"`
	Reason string `json:"reason"`
	Outbox *struct {
		Dropped uint64 `json:"dropped"`
	} `json:"outbox"`
	// state
	Status   string     `json:"status"`
	Online   bool       `json:"online"`
	Approved bool       `json:"approved"`
	Preset   string     `json:"preset"`
	Error    string     `json:"error"`
	Since    *time.Time `json:"since"`
	// events
	Kind      event.Kind `json:"kind"`
	Camera    string     `json:"camera"`
	AuditSeq  uint64     `json:"audit_seq"`
	AuditHash string     `json:"audit_hash"`
	AuditKey  string     `json:"audit_key"`
}

// statsPayload is the stats topic's body besides the envelope.
type statsPayload struct {
	UptimeS float64       `json:"uptime_s"`
	Host    *gatewayStats `json:"host"` // the gateway's process and board figures
	Cameras []cameraStats `json:"cameras"`
}

// topic is a parsed velo/<site>/<gateway>/<rest> topic.
type topic struct {
	site, gw, kind, camera string // kind: status, stats, events, state
}

func parseTopic(t string) (topic, bool) {
	parts := strings.Split(t, "/")
	if len(parts) < 4 || parts[0] != "velo" {
		return topic{}, false
	}
	tp := topic{site: parts[1], gw: parts[2]}
	switch {
	case len(parts) == 4 && (parts[3] == "status" || parts[3] == "stats" || parts[3] == "events"):
		tp.kind = parts[3]
	case len(parts) == 6 && parts[3] == "cameras" && parts[5] == "state":
		tp.kind, tp.camera = "state", parts[4]
	default:
		return topic{}, false // cmd/… and anything else: not ours
	}
	for _, name := range []string{tp.site, tp.gw} {
		if camid.Check(name) != nil {
			return topic{}, false
		}
	}
	if tp.camera != "" && camid.Check(tp.camera) != nil {
		return topic{}, false
	}
	return tp, true
}

// MaxPayload is the largest message the fleet reads: a gateway's largest,
// a stats message of 64 cameras, is about 30 KB. A larger one is dropped
// unread (the JSON decoder would make many times its size in memory).
const MaxPayload = 256 << 10

// maxText bounds every string the fleet keeps from a message (reason,
// preset, error, status), so one gateway cannot swell the attention list.
const maxText = 256

// Handle takes one MQTT message received at now. It reports whether the
// message changed the state (false: not ours, invalid, a duplicate or
// stale, or refused by the limits). The payload is parsed before the
// state's lock is taken.
func (s *State) Handle(topicName string, payload []byte, now time.Time) bool {
	tp, ok := parseTopic(topicName)
	removed := ok && tp.kind == "state" && len(payload) == 0 // a removed camera
	var env envelope
	var st statsPayload
	valid := ok && (removed || decodePayload(tp, payload, &env, &st))
	s.mu.Lock()
	s.counts.Messages++
	switch {
	case !ok:
		if strings.HasPrefix(topicName, "velo/") && !strings.Contains(topicName, "/cmd/") {
			s.counts.Invalid++
		}
		s.mu.Unlock()
		return false
	case removed:
		s.removeCamera(tp)
		s.mu.Unlock()
		return true
	case !valid:
		s.counts.Invalid++
		s.mu.Unlock()
		return false
	}
	cb, changed := s.apply(tp, &env, &st, now)
	s.mu.Unlock()
	if cb != nil {
		cb()
	}
	return changed
}

// decodePayload parses one message: refused when too large, not JSON,
// without a sequence number, naming another site or gateway than its
// topic, or an audit head whose hash or key is not 64 hex digits; the
// strings kept are cut to maxText.
func decodePayload(tp topic, payload []byte, env *envelope, st *statsPayload) bool {
	if len(payload) > MaxPayload {
		return false
	}
	if tp.kind == "stats" && json.Unmarshal(payload, st) != nil {
		return false
	}
	if err := json.Unmarshal(payload, env); err != nil || env.Seq == 0 ||
		(env.Site != "" && env.Site != tp.site) || (env.Gateway != "" && env.Gateway != tp.gw) {
		return false
	}
	if env.Kind == event.AuditHead && (!isHex64(env.AuditHash) || env.AuditKey != "" && !isHex64(env.AuditKey)) {
		return false
	}
	env.Reason, env.Status, env.Preset, env.Error = cutText(env.Reason), cutText(env.Status), cutText(env.Preset), cutText(env.Error)
	for i := range st.Cameras {
		st.Cameras[i].Status = cutText(st.Cameras[i].Status)
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// cutText keeps at most maxText bytes of s, on a rune boundary.
func cutText(s string) string {
	if len(s) <= maxText {
		return s
	}
	s = s[:maxText]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// apply updates the state under the lock; the returned func (the onEvent
// hook) runs after it is released.
func (s *State) apply(tp topic, env *envelope, st *statsPayload, now time.Time) (func(), bool) {
	g, err := s.gateway(tp, now)
	if err != nil {
		return nil, false
	}
	key := tp.kind
	if tp.kind == "state" {
		key = "cam/" + tp.camera
	}
	if env.Seq <= g.seq[key] && !s.seqReset(g, tp, env) {
		s.counts.Duplicates++
		if tp.kind == "events" {
			g.dups++
		}
		return nil, false
	}
	if tp.kind == "state" { // admitted before its seq is kept: a refused camera costs nothing
		if _, err := s.camera(g, tp.camera, now); err != nil {
			return nil, false
		}
	}
	g.seq[key] = env.Seq
	g.lastSeen = now
	switch tp.kind {
	case "status":
		g.statusTime = env.Time
		s.applyStatus(g, env, now)
	case "state":
		return nil, s.applyState(g, tp.camera, env, now) == nil
	case "stats":
		s.applyStats(g, st, now)
	case "events":
		return s.applyEvent(g, env, now), true
	}
	return nil, true
}

// seqResetMargin: a birth with a lower seq is a reset only when it was
// made this much later than the last status (a redelivered old birth
// carries its old time).
const seqResetMargin = time.Minute

// seqReset reports whether a lower-seq message is a gateway starting its
// seq again from 1 (its state directory lost or reinstalled): a birth
// (status online) made well after the last status. The gateway's seqs
// are then forgotten; its audit pin is kept, so its new audit key is an
// incident. Anything else below the last seq stays a duplicate.
func (s *State) seqReset(g *gateway, tp topic, env *envelope) bool {
	if tp.kind != "status" || env.State != "online" || g.statusTime.IsZero() ||
		!env.Time.After(g.statusTime.Add(seqResetMargin)) {
		return false
	}
	s.log.Warn().Str("site", g.site).Str("gateway", g.name).Uint64("seq", env.Seq).Uint64("last_seq", g.seq["status"]).
		Msg("fleet: the gateway's seq started again (state directory lost?): its earlier seqs are forgotten")
	clear(g.seq)
	g.resets++
	return true
}

// gateway finds or creates a gateway, within the limit.
func (s *State) gateway(tp topic, now time.Time) (*gateway, error) {
	k := gwKey{tp.site, tp.gw}
	if g := s.gateways[k]; g != nil {
		return g, nil
	}
	if len(s.gateways) >= s.limits.MaxGateways {
		s.counts.RefusedGW++
		return nil, errRefused
	}
	if len(s.sites[tp.gw]) >= s.limits.MaxSitesPerGateway {
		s.counts.RefusedGWSite++
		s.log.Warn().Str("site", tp.site).Str("gateway", tp.gw).Strs("tracked_under", s.sites[tp.gw]).
			Msg("fleet: a gateway name under another site id: refused (limits.max_sites_per_gateway)")
		return nil, errRefused
	}
	s.sites[tp.gw] = append(s.sites[tp.gw], tp.site)
	g := &gateway{site: tp.site, name: tp.gw, since: now, seq: map[string]uint64{}, cams: map[string]*camera{}, audit: s.pinnedChain(k)}
	s.gateways[k] = g
	return g, nil
}

func (s *State) camera(g *gateway, id string, now time.Time) (*camera, error) {
	if c := g.cams[id]; c != nil {
		return c, nil
	}
	if s.cameras >= s.limits.MaxCameras {
		s.counts.RefusedCam++
		return nil, errRefused
	}
	if len(g.cams) >= s.limits.MaxCamerasPerGateway {
		s.counts.RefusedGWCam++
		return nil, errRefused
	}
	c := &camera{id: id, since: now}
	g.cams[id] = c
	s.cameras++
	return c, nil
}

func (s *State) removeCamera(tp topic) {
	g := s.gateways[gwKey{tp.site, tp.gw}]
	if g == nil {
		return
	}
	delete(g.seq, "cam/"+tp.camera)
	if g.cams[tp.camera] == nil {
		return
	}
	delete(g.cams, tp.camera)
	s.cameras--
}

func (s *State) applyStatus(g *gateway, env *envelope, now time.Time) {
	if env.State != "online" && env.State != "offline" {
		s.counts.Invalid++
		return
	}
	if g.status != env.State {
		g.status, g.since = env.State, now
	}
	g.reason = env.Reason
	if env.Outbox != nil {
		g.outboxDrop = env.Outbox.Dropped
	}
}

func (s *State) applyState(g *gateway, id string, env *envelope, now time.Time) error {
	c, err := s.camera(g, id, now)
	if err != nil {
		return err
	}
	if c.status != env.Status {
		c.since = now
	}
	if env.Since != nil && !env.Since.IsZero() {
		c.since = *env.Since
	}
	c.status, c.online, c.approved = env.Status, env.Online, env.Approved
	c.preset, c.err = env.Preset, env.Error
	return nil
}

func (s *State) applyStats(g *gateway, p *statsPayload, now time.Time) {
	if p.Host != nil {
		st := *p.Host
		st.UptimeS = p.UptimeS
		g.stats, g.statsAt = &st, now
	}
	cams := p.Cameras
	if n := s.limits.MaxCamerasPerGateway; len(cams) > n {
		cams = cams[:n] // the rest could not be kept anyway
	}
	for i := range cams {
		cs := cams[i]
		if camid.Check(cs.ID) != nil {
			continue
		}
		if c, err := s.camera(g, cs.ID, now); err == nil {
			c.stats = &cs
		}
	}
}

func (s *State) applyEvent(g *gateway, env *envelope, now time.Time) func() {
	g.events++
	s.counts.Events++
	lat := now.Sub(env.Time)
	if !env.Time.IsZero() {
		s.latency.add(lat)
		s.hist.Observe(max(lat, 0).Seconds())
	}
	if env.Camera != "" && camid.Check(env.Camera) == nil {
		if c, err := s.camera(g, env.Camera, now); err == nil {
			switch {
			case tamperKinds[env.Kind]:
				c.lastTamper, c.tamperKind = now, env.Kind
				c.tampers++
			case env.Kind == event.VideoLost:
				c.videoLost++
			}
		}
	}
	incident := ""
	if env.Kind == event.AuditHead {
		incident = g.audit.check(env.AuditSeq, env.AuditHash, env.AuditKey, now)
	}
	on, log, site, name, seq, kind := s.onEvent, s.log, g.site, g.name, env.Seq, env.Kind
	return func() {
		if incident != "" {
			log.Warn().Str("site", site).Str("gateway", name).Str("incident", incident).Msg("fleet: audit chain incident")
		}
		if on != nil {
			on(site, name, seq, kind, lat)
		}
	}
}

// auditChain is what the fleet knows of a gateway's audit log head: the
// key is pinned at the first head; a lower audit_seq, the same seq with
// another hash, or another key is an incident.
type auditChain struct {
	pinned       bool // a key is pinned (a head seen, or a pin loaded)
	key, hash    string
	seq          uint64
	at           time.Time // last head
	incidents    uint64
	lastIncident time.Time
	incident     string
}

func (a *auditChain) check(seq uint64, hash, key string, now time.Time) string {
	before := a.incidents
	switch {
	case !a.pinned:
		// the first head: pinned
	case key != a.key:
		a.flag(now, fmt.Sprintf("audit key changed from %.16s… to %.16s…", a.key, key))
		a.key = key // report once; the new key is pinned from now on
	case seq < a.seq:
		a.flag(now, fmt.Sprintf("audit head rewound from seq %d to %d", a.seq, seq))
	case seq == a.seq && hash != a.hash:
		a.flag(now, fmt.Sprintf("audit head forked at seq %d (another hash)", seq))
	}
	a.pinned, a.key, a.seq, a.hash, a.at = true, key, seq, hash, now
	if a.incidents != before {
		return a.incident
	}
	return ""
}

func (a *auditChain) flag(now time.Time, what string) {
	a.incidents++
	a.lastIncident = now
	a.incident = what
}

// SetOnEvent sets the hook called for every accepted event (tests and
// benchmarks); set it before the first Handle.
func (s *State) SetOnEvent(fn func(site, gw string, seq uint64, kind event.Kind, latency time.Duration)) {
	s.mu.Lock()
	s.onEvent = fn
	s.mu.Unlock()
}

// Counts returns the fleet's own counters.
func (s *State) Counts() Counts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counts
}

// Tracked returns how many gateways and cameras are tracked.
func (s *State) Tracked() (gateways, cameras int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.gateways), s.cameras
}
