package telemetry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/rs/zerolog"
)

// Limits of the embedded broker. A command is at most 16 KiB and Velo's
// own messages (status, camera state, events, replies) are a few KiB, so
// anything near MaxPacketBytes is hostile: it is refused from its fixed
// header, before a byte of it is buffered. What is queued for one slow
// client is at most maxPendingWrites × MaxPacketBytes (64 MiB).
const (
	MaxPacketBytes     = 64 << 10
	maxBrokerClients   = 32
	maxPendingWrites   = 1024
	maxInflightPerPeer = 256
	// A disconnected session (and what is queued for it) is kept this long.
	maxSessionExpirySeconds = 3600
)

// VeloUser is the user name Velo's own client logs in with (its password
// is random per run and kept in memory only).
const VeloUser = "$velo"

// BrokerOperator is what the embedded broker needs to know of an operator
// who logs in: how to check the secret they present, and whether they may
// read the gateway's events (the rest of what they may do is the same for
// every operator: docs/mqtt.md).
type BrokerOperator struct {
	CheckSecret func(secret []byte) bool
	ReadEvents  bool
}

// BrokerOptions configure the embedded broker.
type BrokerOptions struct {
	// Listen is a loopback host:port (port 0 picks one).
	Listen string
	// Site and Gateway make the topic root only Velo may publish under.
	Site, Gateway string
	// ClientID is Velo's own client id (default velo-<site>-<gateway>):
	// nobody else may use it.
	ClientID string
	// Operator looks an operator up in the config in force (nil: no
	// operator may log in).
	Operator func(name string) (BrokerOperator, bool)
	Log      zerolog.Logger
}

// EmbeddedBroker is the MQTT broker velo run starts when the config names
// none (the demo and a gateway without central ops). It listens on
// loopback only, refuses anonymous clients, and enforces per-client rules
// (brokerGuard): Velo's own client, with a per-run secret, is the only one
// that may publish under the gateway's topic root or use Velo's client id;
// an operator may publish commands and read what their role may see.
type EmbeddedBroker struct {
	opts   BrokerOptions
	secret string
	guard  *brokerGuard
	up     chan struct{}

	mu     sync.Mutex
	srv    *mochi.Server
	addr   string
	closed bool
}

// NewEmbeddedBroker checks opts and makes Velo's secret; Start or
// StartRetrying opens it.
func NewEmbeddedBroker(opts BrokerOptions) (*EmbeddedBroker, error) {
	host, _, err := net.SplitHostPort(opts.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("embedded broker: %q is not a loopback host:port", opts.Listen)
	}
	if opts.Site == "" || opts.Gateway == "" {
		return nil, errors.New("embedded broker: site and gateway are required")
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID(opts.Site, opts.Gateway)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	blog := opts.Log.With().Str("component", "broker").Logger()
	opts.Log = blog
	br := &EmbeddedBroker{opts: opts, secret: hex.EncodeToString(b), up: make(chan struct{})}
	br.guard = &brokerGuard{root: TopicRoot(opts.Site, opts.Gateway), clientID: opts.ClientID,
		isVelo: br.isVelo, operator: opts.Operator, rates: map[string]*bucket{}, refused: NewRefusals(blog, "embedded broker: clients refused")}
	return br, nil
}

// StartEmbeddedBroker is NewEmbeddedBroker and one Start.
func StartEmbeddedBroker(opts BrokerOptions) (*EmbeddedBroker, error) {
	br, err := NewEmbeddedBroker(opts)
	if err != nil {
		return nil, err
	}
	return br, br.Start()
}

// DefaultClientID is Velo's client id unless the config names one.
func DefaultClientID(site, gateway string) string { return "velo-" + site + "-" + gateway }

// Start binds the listen address once and serves. The socket is bound
// here and handed to the broker as is, so nothing can take the port
// between the check and the serving; a port in use is an error.
func (b *EmbeddedBroker) Start() error {
	ln, err := net.Listen("tcp", b.opts.Listen)
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	srv := mochi.New(&mochi.Options{Capabilities: brokerCapabilities(), Logger: slog.New(zerologHandler{log: b.opts.Log})})
	if err := srv.AddHook(b.guard, nil); err != nil {
		ln.Close()
		return fmt.Errorf("embedded broker: %w", err)
	}
	b.guard.server = srv
	if err := srv.AddListener(&boundListener{id: "velo", ln: ln}); err != nil {
		ln.Close()
		return fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return fmt.Errorf("embedded broker: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.srv != nil { // closed meanwhile, or started already
		srv.Close()
		return errors.New("embedded broker: closed or already started")
	}
	b.srv, b.addr = srv, ln.Addr().String()
	close(b.up)
	return nil
}

// StartRetrying calls Start until it succeeds or ctx ends, with backoff
// (1 s doubling to 30 s): a local process squatting the port delays the
// broker, it does not stop velo. Each failure is logged with what to do.
func (b *EmbeddedBroker) StartRetrying(ctx context.Context) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := b.Start()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			b.opts.Log.Info().Str("listen", b.Addr()).Msg("embedded broker: listening")
			return
		}
		b.opts.Log.Error().Err(err).Dur("retry_in", wait).
			Msg("embedded broker: cannot listen (another process holds the address?); telemetry waits, events are kept in the outbox")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Up is closed once the broker serves.
func (b *EmbeddedBroker) Up() <-chan struct{} { return b.up }

// Addr is the address the broker listens on (empty before Up).
func (b *EmbeddedBroker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// URL is the broker's tcp:// URL (after Up).
func (b *EmbeddedBroker) URL() string { return "tcp://" + b.Addr() }

// ClientID is the client id reserved for Velo's own client.
func (b *EmbeddedBroker) ClientID() string { return b.opts.ClientID }

// VeloCredentials are what Velo's own client logs in with.
func (b *EmbeddedBroker) VeloCredentials() (user, password string) { return VeloUser, b.secret }

// Refused is how many connections, publishes and subscriptions the broker
// refused since it started.
func (b *EmbeddedBroker) Refused() uint64 { return b.guard.refused.Total() }

// Close stops the broker (a no-op if it never started); it does not
// start after Close.
func (b *EmbeddedBroker) Close() error {
	b.mu.Lock()
	srv := b.srv
	b.closed = true
	b.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

func (b *EmbeddedBroker) isVelo(user string, password []byte) bool {
	return user == VeloUser && subtle.ConstantTimeCompare(password, []byte(b.secret)) == 1
}

func brokerCapabilities() *mochi.Capabilities {
	c := mochi.NewDefaultServerCapabilities()
	c.MaximumPacketSize = MaxPacketBytes
	c.MaximumClients = maxBrokerClients
	c.MaximumClientWritesPending = maxPendingWrites
	c.MaximumInflight = maxInflightPerPeer
	c.ReceiveMaximum = maxInflightPerPeer
	c.MaximumSessionExpiryInterval = maxSessionExpirySeconds
	c.TopicAliasMaximum = 0 // every publish names its topic: the ACL sees it
	c.SharedSubAvailable = 0
	return c
}

// boundListener serves an already bound net.Listener (mochi's own TCP
// listener binds in Init, after a check made elsewhere could be stale, and
// logs every refused connection as a warning). mochi waits for a CONNECT
// without a deadline, so a connection gets connectTimeout to send it, and
// at most maxConnections are open at once: idle sockets cannot pile up.
type boundListener struct {
	id     string
	ln     net.Listener
	log    *slog.Logger
	closed atomic.Bool
	active atomic.Int32
}

const (
	connectTimeout = 10 * time.Second
	maxConnections = 2 * maxBrokerClients
)

func (l *boundListener) ID() string                  { return l.id }
func (l *boundListener) Address() string             { return l.ln.Addr().String() }
func (l *boundListener) Protocol() string            { return "tcp" }
func (l *boundListener) Init(log *slog.Logger) error { l.log = log; return nil }

func (l *boundListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		if l.closed.Load() {
			conn.Close()
			return
		}
		if l.active.Add(1) > maxConnections {
			l.active.Add(-1)
			conn.Close()
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(connectTimeout)) // mochi sets the keepalive's after CONNECT
		go func() {
			defer l.active.Add(-1)
			if err := establish(l.id, conn); err != nil {
				l.log.Debug("client ended", "error", err)
			}
		}()
	}
}

func (l *boundListener) Close(closeClients listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	l.ln.Close()
}

// zerologHandler lets mochi's slog logging go to Velo's zerolog logger, so
// the gateway has one log format. mochi's info chatter (client connects)
// is debug here; warnings and errors keep their level.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func (h zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= zerologLevel(l)
}

func (h zerologHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.log.WithLevel(zerologLevel(r.Level))
	add := func(a slog.Attr) bool {
		e = e.Str(a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	e.Msg(r.Message)
	return nil
}

func (h zerologHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h zerologHandler) WithGroup(string) slog.Handler { return h }

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	}
	return zerolog.DebugLevel
}
