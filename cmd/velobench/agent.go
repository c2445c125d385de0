package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"velo/agent/telemetry"
	"velo/masking"
	"velo/masking/maskspec"
)

// blankLatency: frames that come out masked-as-approved after the moment
// the lock marks the view not approved (it calls SetView(false) before it
// reports drift). A producer pushes frames through the masker as the
// pipeline does while another goroutine flips the view; trials × frames.
func blankLatency(trials int) (leaked, total int) {
	m, _ := masking.NewMasker("bench", maskspec.FailBlank)
	m.SetSettle(0)
	_, _ = m.SetMaskSets([]maskspec.MaskSet{{Preset: "1"}})
	for i := 0; i < trials; i++ {
		m.SetView("1", true)
		var flipped atomic.Bool
		done := make(chan int)
		go func() {
			bad := 0
			for j := 0; j < 200; j++ {
				after := flipped.Load() // observed before the frame is processed
				f := masking.NewFrame(64, 36)
				f.Captured = time.Now()
				v, _ := m.Process(f)
				if after && v == masking.Masked && m.Admit(f) {
					bad++
				}
				total++
			}
			done <- bad
		}()
		time.Sleep(time.Duration(i%7) * 50 * time.Microsecond)
		m.SetView("1", false)
		flipped.Store(true)
		leaked += <-done
	}
	return leaked, total
}

// benchProducers publish concurrently in the fan-out benchmark.
const benchProducers = 8

// fanoutRates are the fan-out benchmark's rates (events/s at the
// subscriber).
type fanoutRates struct {
	direct float64 // paho, no durability, 32 in flight per producer
	outbox float64 // durable outbox, 32 saves in flight per producer
	// blocking: durable outbox, each producer waits for each save
	// (Telemetry.Event): bounded by producers ÷ one commit's latency.
	blocking float64
	fsync    time.Duration // median fdatasync of a small write in dir
}

// telemetryFanout: events/s delivered to a real Mosquitto at QoS 1 through
// the durable outbox ÷ the same events published straight with paho (no
// durability). 8 producers, n events each way, counted at a subscriber;
// each producer keeps up to 32 messages in flight on both sides (paho
// tokens; outbox saves), and once more with blocking saves.
func telemetryFanout(dir string, n int) (r fanoutRates, err error) {
	url, stop, err := startBenchBroker(dir)
	if err != nil {
		return r, err
	}
	defer stop()
	c := &fanoutCounter{n: n}
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return r, fmt.Errorf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	sub.Subscribe("bench/#", 1, func(mqtt.Client, mqtt.Message) { c.got.Add(1) }).WaitTimeout(5 * time.Second)
	sub.Subscribe("velo/b/g/events", 1, func(mqtt.Client, mqtt.Message) { c.got.Add(1) }).WaitTimeout(5 * time.Second)
	if r.direct, err = fanoutDirect(url, c); err != nil {
		return r, err
	}
	if r.outbox, err = fanoutOutbox(dir, url, c, 32); err != nil {
		return r, err
	}
	if r.blocking, err = fanoutOutbox(dir, url, c, 1); err != nil {
		return r, err
	}
	r.fsync, err = fsyncLatency(dir)
	return r, err
}

// fsyncLatency is the median time of a 512-byte write and fdatasync to a
// file in dir: the floor of one durable commit.
func fsyncLatency(dir string) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var ds []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		if _, err := f.Write(make([]byte, 512)); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// startBenchBroker starts a Mosquitto on a free loopback port.
func startBenchBroker(dir string) (url string, stop func(), err error) {
	if _, err := exec.LookPath("mosquitto"); err != nil {
		return "", nil, fmt.Errorf("mosquitto not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n", port)
	if os.Geteuid() == 0 {
		text = "user root\n" + text
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command("mosquitto", "-c", conf)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "tcp://" + addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// fanoutCounter counts the messages the subscriber received.
type fanoutCounter struct {
	n   int
	got atomic.Int64
}

// rate waits until every message of the run arrived and returns events/s
// since start.
func (c *fanoutCounter) rate(start time.Time) (float64, error) {
	want := int64(c.n / benchProducers * benchProducers)
	for deadline := time.Now().Add(2 * time.Minute); c.got.Load() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d delivered", c.got.Load(), want)
		}
	}
	return float64(c.n) / time.Since(start).Seconds(), nil
}

// fanoutDirect publishes with paho at QoS 1, no durability, with the same
// window of 32 in flight as the outbox sender.
func fanoutDirect(url string, c *fanoutCounter) (float64, error) {
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-direct"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return 0, fmt.Errorf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	c.got.Store(0)
	start := time.Now()
	var wg sync.WaitGroup
	for range benchProducers {
		wg.Go(func() {
			var toks []mqtt.Token
			for i := 0; i < c.n/benchProducers; i++ {
				b := fmt.Appendf(nil, `{"seq":%d,"kind":"drift","camera":"cam-01","preset":"1","detail":"off preset by 0.300 (tolerance 0.020)"}`, i)
				toks = append(toks, pub.Publish("bench/events", 1, false, b))
				if len(toks) >= 32 {
					toks[0].Wait()
					toks = toks[1:]
				}
			}
			for _, t := range toks {
				t.Wait()
			}
		})
	}
	wg.Wait()
	return c.rate(start)
}

// fanoutOutbox publishes the same events through the durable outbox (fsync
// per group commit) and Telemetry, each producer with up to window saves
// in flight (1: Telemetry.Event, which returns once saved).
func fanoutOutbox(dir, url string, c *fanoutCounter, window int) (float64, error) {
	ob, err := telemetry.OpenOutbox(filepath.Join(dir, "outbox.db"), 0)
	if err != nil {
		return 0, err
	}
	defer os.Remove(filepath.Join(dir, "outbox.db"))
	defer ob.Close()
	// The sender's window is the direct side's total in flight (8 × 32):
	// the same number of unacknowledged publishes on both sides.
	tel, err := telemetry.NewTelemetry(telemetry.TelemetryConfig{Site: "b", Gateway: "g", URL: url, Outbox: ob, Log: zerolog.Nop(),
		Window: benchProducers * 32})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tel.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !tel.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("telemetry did not connect")
		}
	}
	payload := map[string]any{"kind": "drift", "camera": "cam-01", "preset": "1", "detail": "off preset by 0.300 (tolerance 0.020)"}
	c.got.Store(0)
	start := time.Now()
	var wg sync.WaitGroup
	for range benchProducers {
		wg.Go(func() { produceSaved(tel, payload, c.n/benchProducers, window) })
	}
	wg.Wait()
	return c.rate(start)
}

// produceSaved queues n events, keeping up to window saves in flight, and
// waits until all are saved.
func produceSaved(tel *telemetry.Telemetry, payload any, n, window int) {
	var saving []*telemetry.Saving
	for i := 0; i < n; i++ {
		saving = append(saving, tel.EventAsync(payload))
		if len(saving) >= window {
			if err := saving[0].Wait(); err != nil {
				fmt.Fprintln(os.Stderr, "event:", err)
				return
			}
			saving = saving[1:]
		}
	}
	for _, s := range saving {
		if err := s.Wait(); err != nil {
			fmt.Fprintln(os.Stderr, "event:", err)
			return
		}
	}
}

// medianFanout runs telemetryFanout runs times and keeps the run with the
// median outbox ÷ direct ratio (this machine is shared and noisy).
func medianFanout(dir string, n, runs int) (fanoutRates, error) {
	var all []fanoutRates
	for range runs {
		r, err := telemetryFanout(dir, n)
		if err != nil {
			return r, err
		}
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b fanoutRates) int { return cmp.Compare(a.outbox/a.direct, b.outbox/b.direct) })
	return all[len(all)/2], nil
}
