// Package fleet is the central side of Velo's telemetry (`velo fleet`):
// it keeps the state of every gateway and camera from MQTT (deduplicated
// by each gateway's seq), verifies each gateway's audit chain head,
// exports the state as Prometheus metrics and serves what needs attention
// over a small read-only HTTP API. It links no OpenCV. docs/fleet.md.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"
)

// Fleet subscribes to the gateways' telemetry and serves the fleet's
// state. Run owns the MQTT client and the HTTP server; State and Addr are
// safe from any goroutine.
type Fleet struct {
	cfg   Config
	log   zerolog.Logger
	state *State

	connected atomic.Bool
	connects  atomic.Uint64
	addr      chan string
}

// New checks cfg (no I/O) and makes a fleet.

// maxHTTPConns bounds the connections the fleet's HTTP API and /metrics
// serve at once (Prometheus and a few operators need a handful).
const maxHTTPConns = 64

func New(cfg Config, log zerolog.Logger) (*Fleet, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fleet{cfg: cfg, log: log, state: NewState(cfg.Limits, log), addr: make(chan string, 1)}, nil
}

// State is the fleet's state.
func (f *Fleet) State() *State { return f.state }

// Addr waits until the HTTP listener is bound and returns its address.
func (f *Fleet) Addr(ctx context.Context) (string, error) {
	select {
	case a := <-f.addr:
		f.addr <- a
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Subscriptions are the topic filters the fleet subscribes to. Retained
// status and state are subscribed by every instance (a broker does not
// send retained messages to a shared subscription, MQTT 5 §4.8.2, and
// every instance needs the whole picture); the event and stats streams
// go through $share/<group>/ when a group is set, so instances split them.
func (c Config) Subscriptions() []string {
	share := ""
	if c.ShareGroup != "" {
		share = "$share/" + c.ShareGroup + "/"
	}
	return []string{"velo/+/+/status", "velo/+/+/cameras/+/state", share + "velo/+/+/events", share + "velo/+/+/stats"}
}

// Run serves HTTP and consumes MQTT until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	if f.cfg.StateFile != "" {
		pins, err := loadPins(f.cfg.StateFile)
		if err != nil {
			return err
		}
		f.state.SetPins(pins)
		stop := make(chan struct{})
		saved := make(chan struct{})
		go func() { defer close(saved); f.keepPins(stop) }()
		defer func() { close(stop); <-saved }()
	}
	ln, err := net.Listen("tcp", f.cfg.Listen)
	if err != nil {
		return fmt.Errorf("fleet: listen %s: %w", f.cfg.Listen, err)
	}
	f.addr <- ln.Addr().String()
	// Bounded like the agent's endpoints: idle keep-alive connections are
	// closed, slow requests cut, and at most maxHTTPConns served at once.
	ln = netutil.LimitListener(ln, maxHTTPConns)
	srv := &http.Server{Handler: f.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.log.Info().Str("listen", ln.Addr().String()).Msg("fleet: serving /metrics and /api/v1")

	cl := mqtt.NewClient(f.clientOptions())
	if err := f.connect(ctx, cl); err != nil {
		_ = srv.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	cl.Disconnect(250)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fleet: http: %w", err)
	}
	return nil
}

// keepPins saves the audit pins to the state file every 30 s when they
// changed, and once more when stop closes.
func (f *Fleet) keepPins(stop <-chan struct{}) {
	var last []byte
	save := func() {
		pins := f.state.Pins()
		b, _ := json.Marshal(pins)
		if string(b) == string(last) {
			return
		}
		if err := savePins(f.cfg.StateFile, pins); err != nil {
			f.log.Error().Err(err).Str("state_file", f.cfg.StateFile).Msg("fleet: audit pins not saved")
			return
		}
		last = b
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			save()
			return
		case <-tick.C:
			save()
		}
	}
}

// connect makes the first connection, retrying with jittered backoff
// while the broker is unreachable; a refused login ends Run (a bad
// password does not fix itself). Later losses are paho's auto reconnect.
func (f *Fleet) connect(ctx context.Context, cl mqtt.Client) error {
	for attempt := 0; ; attempt++ {
		tok := cl.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return nil
		}
		err := tok.Error()
		if err == nil {
			return nil
		}
		if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			return fmt.Errorf("fleet: broker %s refused the login of %q: %w", brokerAddr(f.cfg.Broker.URL), f.cfg.Broker.Username, err)
		}
		d := min(time.Second<<min(attempt, 5), 30*time.Second)
		d = d/2 + rand.N(d/2+1)
		f.log.Warn().Err(err).Str("broker", brokerAddr(f.cfg.Broker.URL)).Dur("retry_in", d).Msg("fleet: broker unavailable")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// brokerAddr is the broker URL's scheme and host (never userinfo).
func brokerAddr(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable broker url)"
	}
	return u.Scheme + "://" + u.Host
}

func (f *Fleet) clientOptions() *mqtt.ClientOptions {
	b := f.cfg.Broker
	opts := mqtt.NewClientOptions().AddBroker(b.URL).SetClientID(b.ClientID).
		SetCleanSession(false). // the broker queues QoS 1 events while the fleet restarts
		SetAutoReconnect(true).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetMaxReconnectInterval(30 * time.Second).SetKeepAlive(15 * time.Second).
		SetPingTimeout(10 * time.Second).SetOrderMatters(true). // seq order per topic is kept
		SetOnConnectHandler(f.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			f.connected.Store(false)
			f.log.Warn().Err(err).Str("broker", brokerAddr(b.URL)).Msg("fleet: broker connection lost")
		})
	if b.Username != "" {
		opts.SetUsername(b.Username).SetPassword(b.password)
	}
	if b.tls != nil {
		opts.SetTLSConfig(b.tls)
	}
	return opts
}

// onConnect (re)subscribes: with a persistent session the broker keeps
// the subscriptions, but a broker that lost its session store would not.
func (f *Fleet) onConnect(cl mqtt.Client) {
	filters := map[string]byte{}
	for _, t := range f.cfg.Subscriptions() {
		filters[t] = 1
	}
	tok := cl.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
		f.state.Handle(m.Topic(), m.Payload(), time.Now())
	})
	go func() {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			f.log.Error().Err(tok.Error()).Msg("fleet: subscribe failed")
			return
		}
		if st, ok := tok.(*mqtt.SubscribeToken); ok {
			for filter, code := range st.Result() {
				if code >= 0x80 {
					// velo_fleet_mqtt_connected stays 0: VeloFleetDisconnected fires.
					f.log.Error().Str("topic", filter).Msg("fleet: the broker refused a subscription (ACL?)")
					return
				}
			}
		}
		f.connected.Store(true)
		f.connects.Add(1)
		f.log.Info().Str("broker", brokerAddr(f.cfg.Broker.URL)).Strs("topics", f.cfg.Subscriptions()).Msg("fleet: subscribed")
	}()
}

// Handler serves /metrics, /api/v1/attention, /api/v1/gateways and
// /api/v1/self (read-only).
func (f *Fleet) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(f.state), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "velo_fleet_mqtt_connected", Help: "1 while velo fleet is subscribed at the broker."},
			func() float64 { return b2f(f.connected.Load()) }))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/attention", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeJSON(w, f.state.Attention(time.Now(), f.cfg.Thresholds, Filter{Site: q.Get("site"), State: q.Get("state")}))
	})
	mux.HandleFunc("GET /api/v1/gateways", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, f.state.Gateways())
	})
	mux.HandleFunc("GET /api/v1/self", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, f.Self())
	})
	return mux
}

// SelfReport is the fleet's own figures (/api/v1/self).
type SelfReport struct {
	Connected  bool    `json:"connected"`
	Connects   uint64  `json:"connects"`
	Gateways   int     `json:"gateways"`
	Cameras    int     `json:"cameras"`
	Counts     Counts  `json:"counts"`
	LatencyP50 float64 `json:"latency_p50_s"`
	LatencyP99 float64 `json:"latency_p99_s"`
	LatencyN   int     `json:"latency_samples"`
}

// Self reports the fleet's own figures.
func (f *Fleet) Self() SelfReport {
	g, c := f.state.Tracked()
	p50, p99, n := f.state.Latency()
	return SelfReport{Connected: f.connected.Load(), Connects: f.connects.Load(), Gateways: g, Cameras: c,
		Counts: f.state.Counts(), LatencyP50: p50.Seconds(), LatencyP99: p99.Seconds(), LatencyN: n}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
