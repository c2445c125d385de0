// Package telemetry is the gateway's MQTT side: the client that publishes
// status, camera state and events and receives commands (telemetry.go), the
// durable, bounded, ordered outbox that keeps events across broker outages
// and restarts (outbox.go), and the embedded broker velo run starts when the
// config names none (broker.go). Payload shapes are documented in
// docs/mqtt.md and docs/schemas.
package telemetry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
)

// TelemetryConfig configures the MQTT side of a gateway.
type TelemetryConfig struct {
	Site, Gateway string
	// URL is the broker (tcp://, mqtt://, ssl://, tls://, mqtts://).
	URL string
	// Embedded, instead of URL and credentials: the gateway's embedded
	// broker. Run waits until it serves, then logs in as Velo.
	Embedded *EmbeddedBroker
	TLS      *tls.Config
	Username string
	Password string
	ClientID string
	Version  string
	// KeepAlive (default 15 s) and AckTimeout (default 15 s): a broker that
	// acknowledges nothing for AckTimeout while messages are in flight is
	// taken as dead even though the TCP connection looks alive (paho #723).
	KeepAlive  time.Duration
	AckTimeout time.Duration
	// Reconnect backoff: jittered between BackoffMin (default 1 s) and
	// BackoffMax (default 60 s).
	BackoffMin, BackoffMax time.Duration
	// Window is the number of QoS 1 messages in flight (default 32; paho
	// runs out of message ids at 65,535).
	Window int
	Outbox *Outbox
	Log    zerolog.Logger
	// OnCommand receives cmd/<verb> messages; nil subscribes to none.
	OnCommand func(verb string, payload []byte)
	// OnConnection is told of every connect and loss (tests and metrics).
	OnConnection func(up bool, reason string)
}

// String names the connection without its credentials (%v and %+v of a
// TelemetryConfig never show the password).
func (c TelemetryConfig) String() string {
	return fmt.Sprintf("telemetry %s/%s to %s", c.Site, c.Gateway, brokerAddr(c.URL))
}

// GoString is String, for %#v.
func (c TelemetryConfig) GoString() string { return c.String() }

// Telemetry publishes a gateway's status, camera state and events to MQTT
// and receives its commands. Events and replies go through the durable
// outbox and are delivered in sequence order, at least once; status and
// state are retained and only their latest value is sent. Run owns the
// connection; the other methods are safe from any goroutine.
type Telemetry struct {
	cfg  TelemetryConfig
	root string

	mu        sync.Mutex
	states    map[string][]byte // camera → latest state payload (without seq)
	dirty     map[string]bool
	stats     []byte // latest stats payload not yet sent (without seq)
	wake      chan struct{}
	connected bool
	lastLoss  time.Time
	reconnect int
}

// NewTelemetry checks cfg (no I/O).
func NewTelemetry(cfg TelemetryConfig) (*Telemetry, error) {
	if cfg.Outbox == nil {
		return nil, errors.New("telemetry: an outbox is required")
	}
	if (cfg.URL == "" && cfg.Embedded == nil) || cfg.Site == "" || cfg.Gateway == "" {
		return nil, errors.New("telemetry: broker url, site and gateway are required")
	}
	if cfg.Embedded != nil {
		cfg.ClientID = cfg.Embedded.ClientID()
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID(cfg.Site, cfg.Gateway)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 15 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(60*time.Second, cfg.BackoffMin)
	}
	if cfg.Window <= 0 || cfg.Window > 1024 {
		cfg.Window = 32
	}
	return &Telemetry{cfg: cfg, root: TopicRoot(cfg.Site, cfg.Gateway), states: map[string][]byte{},
		dirty: map[string]bool{}, wake: make(chan struct{}, 1)}, nil
}

// TopicRoot is velo/<site>/<gateway>/.
func TopicRoot(site, gateway string) string { return "velo/" + site + "/" + gateway + "/" }

// Root returns the gateway's topic root.
func (t *Telemetry) Root() string { return t.root }

// Connected reports whether a broker session is up.
func (t *Telemetry) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.connected
}

// Message is the envelope of every payload Velo publishes: a per-gateway
// sequence number (a consumer drops anything older than what it has) and
// the time it was made.
type Message struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Site    string    `json:"site"`
	Gateway string    `json:"gateway"`
}

// Publish queues a message on root+sub through the outbox: v is
// marshalled with the envelope fields (seq, time, site, gateway) merged
// in. It returns once the message is durably saved.
func (t *Telemetry) Publish(sub string, v any) (uint64, error) {
	return t.cfg.Outbox.Enqueue(t.root+sub, false, func(seq uint64) ([]byte, error) {
		return t.envelope(seq, v)
	})
}

func (t *Telemetry) envelope(seq uint64, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	head, _ := json.Marshal(Message{Seq: seq, Time: time.Now().UTC(), Site: t.cfg.Site, Gateway: t.cfg.Gateway})
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("telemetry: payload %T is not a JSON object", v)
	}
	if len(body) == 2 {
		return head, nil
	}
	// {"seq":..,"time":..,...} + , + rest of body
	out := make([]byte, 0, len(head)+len(body))
	out = append(out, head[:len(head)-1]...)
	out = append(out, ',')
	out = append(out, body[1:]...)
	return out, nil
}

// Event publishes an event (QoS 1, durable).
func (t *Telemetry) Event(v any) (uint64, error) { return t.Publish("events", v) }

// EventAsync queues an event like Event but returns before it is saved:
// it is saved once the returned Saving is done without error. A producer
// with many events keeps several saves in flight and they share fsyncs.
func (t *Telemetry) EventAsync(v any) *Saving {
	return t.cfg.Outbox.EnqueueAsync(t.root+"events", false, func(seq uint64) ([]byte, error) {
		return t.envelope(seq, v)
	})
}

// SetState records a camera's latest state; it is published retained on
// cameras/<id>/state as soon as the broker is reachable (only the latest
// value: state is not queued).
func (t *Telemetry) SetState(camera string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.cfg.Log.Error().Err(err).Str("camera", camera).Msg("state not encodable")
		return
	}
	t.mu.Lock()
	if string(t.states[camera]) != string(b) {
		t.states[camera] = b
		t.dirty[camera] = true
	}
	t.mu.Unlock()
	t.poke()
}

// SetStats queues the gateway's figures for the stats topic: QoS 0, not
// retained, only the latest (one not sent before the next replaces it).
func (t *Telemetry) SetStats(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.cfg.Log.Error().Err(err).Msg("stats not encodable")
		return
	}
	t.mu.Lock()
	t.stats = b
	t.mu.Unlock()
	t.poke()
}

// ForgetState removes a camera's retained state (a camera removed from
// the config): an empty retained message clears it on the broker.
func (t *Telemetry) ForgetState(camera string) {
	t.mu.Lock()
	t.states[camera] = nil
	t.dirty[camera] = true
	t.mu.Unlock()
	t.poke()
}

type statusPayload struct {
	State   string      `json:"state"` // online | offline
	Reason  string      `json:"reason,omitempty"`
	Version string      `json:"version,omitempty"`
	Outbox  OutboxStats `json:"outbox"`
}

// Run connects, publishes and reconnects until ctx ends; then it publishes
// a retained offline status (best effort) and disconnects.
func (t *Telemetry) Run(ctx context.Context) error {
	if e := t.cfg.Embedded; e != nil {
		select {
		case <-e.Up():
		case <-ctx.Done():
			return nil
		}
		t.cfg.URL = e.URL()
		t.cfg.Username, t.cfg.Password = e.VeloCredentials()
	}
	attempt := 0
	for ctx.Err() == nil {
		err := t.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t.setConnected(false, err.Error())
		var cerr connectError
		if !errors.As(err, &cerr) {
			attempt = 0 // a session that came up resets the backoff
		}
		d := t.backoff(attempt)
		attempt++
		t.cfg.Log.Warn().Err(err).Dur("retry_in", d).Msg("mqtt: broker unavailable")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
	return nil
}

// backoff is exponential with jitter ("equal jitter": half fixed, half
// random), so a fleet of gateways does not reconnect in lock-step.
func (t *Telemetry) backoff(attempt int) time.Duration {
	d := t.cfg.BackoffMin << min(attempt, 16)
	if d > t.cfg.BackoffMax || d <= 0 {
		d = t.cfg.BackoffMax
	}
	return d/2 + rand.N(d/2+1)
}

type connectError struct{ error }

func (t *Telemetry) setConnected(up bool, reason string) {
	t.mu.Lock()
	changed := t.connected != up
	t.connected = up
	if !up && changed {
		t.lastLoss = time.Now()
	}
	if up {
		t.reconnect++
	}
	t.mu.Unlock()
	if changed && t.cfg.OnConnection != nil {
		t.cfg.OnConnection(up, reason)
	}
}

func (t *Telemetry) status(state, reason string) ([]byte, error) {
	seq, err := t.cfg.Outbox.NextSeq()
	if err != nil {
		return nil, err
	}
	return t.statusSeq(seq, state, reason)
}

func (t *Telemetry) statusSeq(seq uint64, state, reason string) ([]byte, error) {
	return t.envelope(seq, statusPayload{State: state, Reason: reason, Version: t.cfg.Version, Outbox: t.cfg.Outbox.Stats()})
}

// session is one broker connection.
//
// Sequence numbers on the status topic: the birth's number is taken before
// the LWT's, so this session's LWT supersedes its birth, and the next
// session's birth supersedes this LWT even if the broker publishes the LWT
// late (a consumer keeps the highest seq per topic).
func (t *Telemetry) session(ctx context.Context) error {
	birthSeq, err := t.cfg.Outbox.NextSeq()
	if err != nil {
		return connectError{err}
	}
	will, err := t.status("offline", "connection lost")
	if err != nil {
		return connectError{err}
	}
	lost := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(t.cfg.URL).SetClientID(t.cfg.ClientID).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(t.cfg.KeepAlive).SetPingTimeout(min(10*time.Second, t.cfg.KeepAlive)).
		SetWriteTimeout(t.cfg.AckTimeout).SetConnectTimeout(10*time.Second).
		SetBinaryWill(t.root+"status", will, 1, true).SetCustomOpenConnectionFn(dialBounded).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if t.cfg.TLS != nil {
		opts.SetTLSConfig(t.cfg.TLS)
	}
	if t.cfg.Username != "" {
		opts.SetUsername(t.cfg.Username).SetPassword(t.cfg.Password)
	}
	cl := mqtt.NewClient(opts)
	tok := cl.Connect()
	if err := waitToken(ctx, tok, 15*time.Second); err != nil {
		cl.Disconnect(0)
		return connectError{fmt.Errorf("connect %s: %w", brokerAddr(t.cfg.URL), err)}
	}
	defer func() {
		done := make(chan struct{})
		go func() { cl.Disconnect(250); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}()
	if t.cfg.OnCommand != nil {
		on := t.cfg.OnCommand
		prefix := t.root + "cmd/"
		stok := cl.Subscribe(prefix+"#", 1, func(_ mqtt.Client, m mqtt.Message) {
			verb := strings.TrimPrefix(m.Topic(), prefix)
			if verb == m.Topic() || verb == "reply" || strings.HasSuffix(verb, "/reply") {
				return
			}
			on(verb, m.Payload())
		})
		if err := waitToken(ctx, stok, t.cfg.AckTimeout); err != nil {
			return fmt.Errorf("subscribe commands: %w", err)
		}
	}
	birth, err := t.statusSeq(birthSeq, "online", "")
	if err != nil {
		return err
	}
	if err := waitToken(ctx, cl.Publish(t.root+"status", 1, true, birth), t.cfg.AckTimeout); err != nil {
		return fmt.Errorf("birth: %w", err)
	}
	t.mu.Lock()
	for id := range t.states {
		t.dirty[id] = true // a new session republishes every state
	}
	t.mu.Unlock()
	t.setConnected(true, "")
	t.cfg.Log.Info().Str("broker", brokerAddr(t.cfg.URL)).Str("topics", t.root+"#").Msg("mqtt: connected")

	err = t.pump(ctx, cl, lost)
	if ctx.Err() != nil {
		off, e := t.status("offline", "shutdown")
		if e == nil {
			_ = waitToken(context.Background(), cl.Publish(t.root+"status", 1, true, off), 2*time.Second)
		}
		return nil
	}
	return err
}

type flight struct {
	seq  uint64 // 0: not from the outbox (state)
	tok  mqtt.Token
	sent time.Time
}

// pumpState is one session's sending window.
type pumpState struct {
	inflight []flight
	acks     []uint64
	last     uint64 // highest outbox seq sent in this session
}

// pump sends outbox messages and state updates, keeping Window messages in
// flight, acknowledging delivered messages in the outbox, and ends the
// session when the broker stops acknowledging (watchdog) or is lost.
func (t *Telemetry) pump(ctx context.Context, cl mqtt.Client, lost <-chan error) error {
	ps := &pumpState{}
	defer t.flushAcks(ps)
	for {
		changed := t.cfg.Outbox.Changed()
		if err := t.retire(ps); err != nil {
			return err
		}
		if err := t.sendStates(cl, ps); err != nil {
			return err
		}
		if err := t.sendStats(cl); err != nil {
			return err
		}
		if err := t.sendOutbox(cl, ps); err != nil {
			return err
		}
		var headDone <-chan struct{}
		var watchdog <-chan time.Time
		if len(ps.inflight) > 0 {
			headDone = ps.inflight[0].tok.Done()
			watchdog = time.After(time.Until(ps.inflight[0].sent.Add(t.cfg.AckTimeout)))
		}
		var more <-chan struct{}
		if len(ps.inflight) < t.cfg.Window {
			more = changed
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-lost:
			return fmt.Errorf("connection lost: %w", err)
		case <-headDone:
		case <-more:
		case <-t.wake:
		case <-watchdog:
			return fmt.Errorf("broker acknowledged nothing for %v with %d messages in flight: taking it as dead", t.cfg.AckTimeout, len(ps.inflight))
		}
	}
}

// flushAcks hands the delivered messages to the outbox for deletion; the
// sender does not wait for that write (a message whose deletion is lost
// is sent again: at least once).
func (t *Telemetry) flushAcks(ps *pumpState) error {
	t.cfg.Outbox.AckAsync(ps.acks...)
	ps.acks = nil
	return nil
}

// retire removes completed messages from the head of the window, in order,
// and acknowledges them in the outbox in batches.
func (t *Telemetry) retire(ps *pumpState) error {
	for len(ps.inflight) > 0 {
		f := ps.inflight[0]
		select {
		case <-f.tok.Done():
		default:
			return t.maybeFlush(ps)
		}
		if err := f.tok.Error(); err != nil {
			return fmt.Errorf("publish seq %d: %w", f.seq, err)
		}
		if f.seq != 0 {
			ps.acks = append(ps.acks, f.seq)
		}
		ps.inflight = ps.inflight[1:]
	}
	return t.maybeFlush(ps)
}

func (t *Telemetry) maybeFlush(ps *pumpState) error {
	if len(ps.acks) >= t.cfg.Window/2 || (len(ps.inflight) == 0 && len(ps.acks) > 0) {
		return t.flushAcks(ps)
	}
	return nil
}

// sendStates publishes changed camera states first: they are few and
// latest-only (an empty payload clears a removed camera's state).
func (t *Telemetry) sendStates(cl mqtt.Client, ps *pumpState) error {
	for _, id := range t.takeDirty() {
		t.mu.Lock()
		b := t.states[id]
		t.mu.Unlock()
		var payload []byte
		if b != nil {
			seq, err := t.cfg.Outbox.NextSeq()
			if err != nil {
				return err
			}
			if payload, err = t.envelope(seq, json.RawMessage(b)); err != nil {
				return err
			}
		}
		ps.inflight = append(ps.inflight, flight{tok: cl.Publish(t.root+"cameras/"+id+"/state", 1, true, payload), sent: time.Now()})
	}
	return nil
}

// sendStats publishes the latest figures once, QoS 0 and not retained:
// not queued, not acknowledged, not resent (the next interval's replace
// them).
func (t *Telemetry) sendStats(cl mqtt.Client) error {
	t.mu.Lock()
	b := t.stats
	t.stats = nil
	t.mu.Unlock()
	if b == nil {
		return nil
	}
	seq, err := t.cfg.Outbox.NextSeq()
	if err != nil {
		return err
	}
	payload, err := t.envelope(seq, json.RawMessage(b))
	if err != nil {
		return err
	}
	cl.Publish(t.root+"stats", 0, false, payload)
	return nil
}

// sendOutbox fills the window with the next outbox messages.
func (t *Telemetry) sendOutbox(cl mqtt.Client, ps *pumpState) error {
	room := t.cfg.Window - len(ps.inflight)
	if room <= 0 {
		return nil
	}
	msgs, err := t.cfg.Outbox.After(ps.last, room)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		ps.inflight = append(ps.inflight, flight{seq: m.Seq, tok: cl.Publish(m.Topic, 1, m.Retain, m.Payload), sent: time.Now()})
		ps.last = m.Seq
	}
	return nil
}

func (t *Telemetry) takeDirty() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id := range t.dirty {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	clear(t.dirty)
	return ids
}

func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return fmt.Errorf("no answer from the broker within %v", d)
	}
}

// Refresh republishes every camera state.
func (t *Telemetry) Refresh() {
	t.mu.Lock()
	for id := range t.states {
		t.dirty[id] = true
	}
	t.mu.Unlock()
	t.poke()
}

// poke wakes the sender (non-blocking).
func (t *Telemetry) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// brokerAddr is the broker URL's scheme and host, for logs and errors
// (never its userinfo).
func brokerAddr(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable broker url)"
	}
	return u.Scheme + "://" + u.Host
}
