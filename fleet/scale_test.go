package fleet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/telemetry"
	"velo/internal/testkit"
)

// TestMain doubles as `velo fleet run` in a child process (VELO_FLEET_CHILD
// names the broker), so the scale test measures the fleet's own memory.
func TestMain(m *testing.M) {
	if b := os.Getenv("VELO_FLEET_CHILD"); b != "" {
		os.Exit(fleetChild(b))
	}
	os.Exit(m.Run())
}

func fleetChild(broker string) int {
	f, err := New(Config{Broker: BrokerConfig{URL: broker, ClientID: "velo-fleet-scale"}, Listen: "127.0.0.1:0",
		ShareGroup: os.Getenv("VELO_FLEET_SHARE")},
		zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		<-sig
		stop()
	}()
	go func() {
		if addr, err := f.Addr(ctx); err == nil {
			fmt.Printf("ADDR %s\n", addr)
		}
	}()
	if err := f.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// scaleRun is one run's settings and figures.
type scaleRun struct {
	N       int           // gateways
	Rate    float64       // events per second per gateway
	Steady  time.Duration // measured phase
	Outage  time.Duration // broker down
	OutDir  string        // outboxes
	Figures map[string]string
}

// TestFleetScale: N simulated gateways, each Velo's real telemetry client
// and durable outbox (agent/telemetry, no video), publish to a real
// Mosquitto while velo fleet (a child process) consumes; then the broker
// restarts. Measured: event-to-fleet latency, messages/s, the fleet's
// memory, the reconnect storm; events lost and duplicates kept after
// dedupe must be 0. N=100 here (VELO_FLEET_N, _RATE, _STEADY for
// `make fleet-test`: 1000; VELO_FLEET_SHARE puts the fleet in a share
// group: docs/fleet.md says what that loses across a broker restart).
func TestFleetScale(t *testing.T) {
	r := &scaleRun{N: envInt("VELO_FLEET_N", 100), Rate: envFloat("VELO_FLEET_RATE", 1),
		Steady: envDur("VELO_FLEET_STEADY", 5*time.Second), Outage: 3 * time.Second, Figures: map[string]string{}}
	r.OutDir = t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		// Real gateways each have their own disk; on one test machine the
		// outboxes' fsyncs would share one, so they live in memory.
		r.OutDir, _ = os.MkdirTemp("/dev/shm", "velo-fleet-scale-")
		t.Cleanup(func() { os.RemoveAll(r.OutDir) })
	}
	runScale(t, r)
	for _, k := range []string{"gateways", "setup", "events/s", "latency p50", "latency p99", "fleet msgs/s",
		"fleet rss", "outage", "all back after", "peak connects/s", "events saved", "events lost", "duplicates dropped by seq", "duplicates kept"} {
		t.Logf("%-26s %s", k, r.Figures[k])
	}
}

type simGateway struct {
	name  string
	tel   *telemetry.Telemetry
	ob    *telemetry.Outbox
	saved atomic.Uint64 // events saved
	last  atomic.Uint64 // last saved seq
	mu    sync.Mutex
	ups   []time.Time
}

func runScale(t *testing.T, r *scaleRun) {
	m := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	fleetAddr, rss := startFleetChild(t, m.URL(false))
	t0 := time.Now()
	gws, stopGW := startGateways(t, r, m.URL(false))
	defer stopGW()
	testkit.WaitFor(t, time.Duration(r.N)*200*time.Millisecond+30*time.Second, "every gateway online at the fleet", func() bool {
		var s SelfReport
		getJSON(t, "http://"+fleetAddr+"/api/v1/self", &s)
		return s.Gateways == r.N && s.Cameras == 2*r.N
	})
	r.Figures["gateways"] = fmt.Sprintf("%d (2 cameras each), %.2f events/s each", r.N, r.Rate)
	r.Figures["setup"] = time.Since(t0).Round(time.Millisecond).String()

	var before SelfReport
	getJSON(t, "http://"+fleetAddr+"/api/v1/self", &before)
	gen := startEvents(gws, r.Rate)
	time.Sleep(r.Steady)
	waitDelivered(t, fleetAddr, gws, gen.pause)
	var after SelfReport
	getJSON(t, "http://"+fleetAddr+"/api/v1/self", &after)
	el := r.Steady.Seconds()
	r.Figures["events/s"] = fmt.Sprintf("%.0f", float64(after.Counts.Events-before.Counts.Events)/el)
	r.Figures["latency p50"] = fmt.Sprintf("%.1f ms", after.LatencyP50*1000)
	r.Figures["latency p99"] = fmt.Sprintf("%.1f ms (%d samples)", after.LatencyP99*1000, after.LatencyN)
	r.Figures["fleet msgs/s"] = fmt.Sprintf("%.0f (the broker carries each twice: in from a gateway, out to the fleet)", float64(after.Counts.Messages-before.Counts.Messages)/el)
	r.Figures["fleet rss"] = fmt.Sprintf("%.1f MB", float64(rss())/1e6)

	t.Logf("steady phase: every event delivered")
	// The reconnect storm: events keep coming while the broker is down.
	gen.resume()
	time.Sleep(time.Second)
	m.Stop()
	time.Sleep(r.Outage)
	restart := time.Now()
	m.Start()
	testkit.WaitFor(t, 120*time.Second, "every gateway reconnected", func() bool { return backCount(gws, restart) == r.N })
	back, peak := storm(gws, restart)
	r.Figures["outage"] = r.Outage.String()
	r.Figures["all back after"] = back.Round(time.Millisecond).String()
	r.Figures["peak connects/s"] = strconv.Itoa(peak)
	time.Sleep(time.Second)
	waitDelivered(t, fleetAddr, gws, gen.pause)
	gen.stop()
	checkDelivery(t, r, fleetAddr, gws)
}

// startFleetChild runs the fleet in a child process and returns its API
// address and a func reading its resident memory.
func startFleetChild(t *testing.T, broker string) (string, func() int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VELO_FLEET_CHILD="+broker)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("the fleet child did not start")
	}
	testkit.WaitFor(t, 30*time.Second, "the fleet subscribed", func() bool {
		var s SelfReport
		getJSON(t, "http://"+a+"/api/v1/self", &s)
		return s.Connected
	})
	return a, func() int64 { return vmRSS(cmd.Process.Pid) }
}

func vmRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// startGateways starts r.N gateways (outbox + telemetry, default
// backoff: 1 s to 60 s with jitter), each with two cameras.
func startGateways(t *testing.T, r *scaleRun, broker string) ([]*simGateway, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	gws := make([]*simGateway, r.N)
	for i := range gws {
		g := &simGateway{name: fmt.Sprintf("gw%04d", i)}
		ob, err := telemetry.OpenOutbox(filepath.Join(r.OutDir, g.name+".db"), 0)
		if err != nil {
			t.Fatal(err)
		}
		g.ob = ob
		g.tel, err = telemetry.NewTelemetry(telemetry.TelemetryConfig{Site: fmt.Sprintf("site%02d", i%10), Gateway: g.name,
			URL: broker, Outbox: ob, Log: zerolog.Nop(), OnConnection: func(up bool, _ string) {
				if up {
					g.mu.Lock()
					g.ups = append(g.ups, time.Now())
					g.mu.Unlock()
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"cam-a", "cam-b"} {
			g.tel.SetState(c, map[string]any{"id": c, "status": "streaming", "online": true, "approved": true})
		}
		gws[i] = g
		wg.Go(func() { _ = g.tel.Run(ctx) })
		time.Sleep(2 * time.Millisecond) // a fleet comes up over time, not in one instant
	}
	return gws, func() {
		cancel()
		wg.Wait()
		for _, g := range gws {
			_ = g.ob.Close()
		}
	}
}

// events generates events at rate per gateway, staggered.
type events struct {
	mu      sync.Mutex
	paused  bool
	stopped chan struct{}
	wg      sync.WaitGroup
}

func startEvents(gws []*simGateway, rate float64) *events {
	e := &events{stopped: make(chan struct{})}
	every := time.Duration(float64(time.Second) / rate)
	for i, g := range gws {
		e.wg.Go(func() {
			select {
			case <-time.After(every * time.Duration(i) / time.Duration(len(gws))):
			case <-e.stopped:
				return
			}
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-e.stopped:
					return
				case <-tick.C:
				}
				if e.isPaused() {
					continue
				}
				seq, err := g.tel.Event(map[string]any{"kind": "config_applied", "event_time": time.Now()})
				if err == nil {
					g.saved.Add(1)
					g.last.Store(seq)
				}
			}
		})
	}
	return e
}

func (e *events) isPaused() bool { e.mu.Lock(); defer e.mu.Unlock(); return e.paused }
func (e *events) pause()         { e.mu.Lock(); e.paused = true; e.mu.Unlock() }
func (e *events) resume()        { e.mu.Lock(); e.paused = false; e.mu.Unlock() }
func (e *events) stop()          { close(e.stopped); e.wg.Wait() }

// waitDelivered pauses the events, then waits until the fleet has every
// saved event of every gateway.
func waitDelivered(t *testing.T, addr string, gws []*simGateway, pause func()) {
	pause()
	time.Sleep(100 * time.Millisecond) // an Enqueue under way finishes
	testkit.WaitFor(t, 90*time.Second, "every saved event at the fleet", func() bool {
		var reps []GatewayReport
		getJSON(t, "http://"+addr+"/api/v1/gateways", &reps)
		by := map[string]GatewayReport{}
		for _, r := range reps {
			by[r.Gateway] = r
		}
		for _, g := range gws {
			if by[g.name].LastEventSeq < g.last.Load() {
				return false
			}
		}
		return true
	})
}

func backCount(gws []*simGateway, since time.Time) int {
	n := 0
	for _, g := range gws {
		g.mu.Lock()
		if len(g.ups) > 0 && g.ups[len(g.ups)-1].After(since) {
			n++
		}
		g.mu.Unlock()
	}
	return n
}

// storm returns when the last gateway was back after restart and the
// most connections made in one second.
func storm(gws []*simGateway, restart time.Time) (time.Duration, int) {
	var last time.Duration
	perSec := map[int64]int{}
	for _, g := range gws {
		g.mu.Lock()
		for _, u := range g.ups {
			if u.After(restart) {
				last = max(last, u.Sub(restart))
				perSec[int64(u.Sub(restart)/time.Second)]++
			}
		}
		g.mu.Unlock()
	}
	peak := 0
	for _, n := range perSec {
		peak = max(peak, n)
	}
	return last, peak
}

// checkDelivery: for each gateway the fleet accepted, after dedupe by
// seq, exactly the events the gateway saved (their count and last seq:
// accepted seqs only rise, so equal counts mean the same events).
func checkDelivery(t *testing.T, r *scaleRun, addr string, gws []*simGateway) {
	var reps []GatewayReport
	getJSON(t, "http://"+addr+"/api/v1/gateways", &reps)
	by := map[string]GatewayReport{}
	for _, x := range reps {
		by[x.Gateway] = x
	}
	var saved, lost, kept, dropped uint64
	for _, g := range gws {
		rep := by[g.name]
		s := g.saved.Load()
		saved += s
		dropped += rep.Duplicates
		switch {
		case rep.Events < s:
			lost += s - rep.Events
		case rep.Events > s:
			kept += rep.Events - s
		}
		if rep.LastEventSeq != g.last.Load() {
			t.Errorf("%s: last event seq at the fleet %d, saved %d", g.name, rep.LastEventSeq, g.last.Load())
		}
	}
	r.Figures["events saved"] = strconv.FormatUint(saved, 10)
	r.Figures["events lost"] = strconv.FormatUint(lost, 10)
	r.Figures["duplicates kept"] = strconv.FormatUint(kept, 10)
	r.Figures["duplicates dropped by seq"] = strconv.FormatUint(dropped, 10)
	if lost != 0 || kept != 0 || saved == 0 {
		t.Errorf("events saved %d, lost %d, duplicates kept %d; want 0 lost and 0 kept", saved, lost, kept)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func envFloat(k string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func envDur(k string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func signalNotify(c chan os.Signal) { signal.Notify(c, syscall.SIGTERM, os.Interrupt) }
