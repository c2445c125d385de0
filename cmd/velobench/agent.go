package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"velo/agent"
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

// telemetryFanout: events/s delivered to a real Mosquitto at QoS 1 through
// the durable outbox ÷ the same events published straight with paho (no
// durability). 8 producers, n events each way, counted at a subscriber.
func telemetryFanout(dir string, n int) (withOutbox, direct float64, err error) {
	if _, err := exec.LookPath("mosquitto"); err != nil {
		return 0, 0, fmt.Errorf("mosquitto not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
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
		return 0, 0, err
	}
	cmd := exec.Command("mosquitto", "-c", conf)
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := "tcp://" + addr
	var got atomic.Int64
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return 0, 0, fmt.Errorf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	sub.Subscribe("bench/#", 1, func(mqtt.Client, mqtt.Message) { got.Add(1) }).WaitTimeout(5 * time.Second)
	sub.Subscribe("velo/b/g/events", 1, func(mqtt.Client, mqtt.Message) { got.Add(1) }).WaitTimeout(5 * time.Second)
	payload := map[string]any{"kind": "drift", "camera": "cam-01", "preset": "1", "detail": "off preset by 0.300 (tolerance 0.020)"}
	const producers = 8
	waitAll := func(start time.Time, want int64) (float64, error) {
		for deadline := time.Now().Add(2 * time.Minute); got.Load() < want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("only %d of %d delivered", got.Load(), want)
			}
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}

	// Direct: paho QoS 1, no durability.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("bench-direct"))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return 0, 0, fmt.Errorf("publisher: %v", tok.Error())
	}
	got.Store(0)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var toks []mqtt.Token
			for i := 0; i < n/producers; i++ {
				b := fmt.Appendf(nil, `{"seq":%d,"kind":"drift","camera":"cam-01","preset":"1","detail":"off preset by 0.300 (tolerance 0.020)"}`, i)
				toks = append(toks, pub.Publish("bench/events", 1, false, b))
				if len(toks) >= 32 { // same window as the outbox sender
					toks[0].Wait()
					toks = toks[1:]
				}
			}
			for _, t := range toks {
				t.Wait()
			}
		}()
	}
	wg.Wait()
	if direct, err = waitAll(start, int64(n/producers*producers)); err != nil {
		return 0, 0, err
	}
	pub.Disconnect(0)

	// Through the outbox (fsync per group commit) and Telemetry.
	ob, err := agent.OpenOutbox(filepath.Join(dir, "outbox.db"), 0)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(filepath.Join(dir, "outbox.db"))
	defer ob.Close()
	tel, err := agent.NewTelemetry(agent.TelemetryConfig{Site: "b", Gateway: "g", URL: url, Outbox: ob, Log: zerolog.Nop()})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tel.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !tel.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("telemetry did not connect")
		}
	}
	got.Store(0)
	start = time.Now()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/producers; i++ {
				if _, err := tel.Event(payload); err != nil {
					fmt.Fprintln(os.Stderr, "event:", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if withOutbox, err = waitAll(start, int64(n/producers*producers)); err != nil {
		return 0, 0, err
	}
	return withOutbox, direct, nil
}
