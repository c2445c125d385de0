package telemetry

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"velo/internal/testkit"

	"github.com/rs/zerolog"
)

// runTelemetry starts a Telemetry on its own outbox; stop ends it.
func runTelemetry(t *testing.T, url string, tc *tls.Config, gateway string) (tel *Telemetry, ups *atomic.Int32, stop func()) {
	t.Helper()
	ob, err := OpenOutbox(filepath.Join(t.TempDir(), "outbox.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	ups = new(atomic.Int32)
	tel, err = NewTelemetry(TelemetryConfig{Site: "s", Gateway: gateway, URL: url, TLS: tc, Outbox: ob, Log: zerolog.Nop(),
		BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		OnConnection: func(up bool, _ string) {
			if up {
				ups.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tel.Run(ctx); close(done) }()
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			ob.Close()
		}
	}
	t.Cleanup(stop)
	return tel, ups, stop
}

// Security: TLS and mutual TLS to the broker with a
// generated CA. Sessions to a broker with a certificate from another CA,
// and mutual-TLS sessions without a (good) client certificate: 0.
func TestTelemetryTLS(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t, "velo-test-ca")
	rogue := testkit.NewPKI(t, "rogue-ca")
	tlsBroker := testkit.StartMosquitto(t, testkit.MosquittoOptions{TLS: pki})
	mtlsBroker := testkit.StartMosquitto(t, testkit.MosquittoOptions{TLS: pki, RequireCert: true})
	gwCert := pki.Issue(t, "gw-a", false)
	rogueCert := rogue.Issue(t, "gw-a", false)
	colCert := pki.Issue(t, "central", false)

	cases := []struct {
		name    string
		broker  *testkit.Mosquitto
		tls     *tls.Config
		connect bool
	}{
		{"tls, trusted CA", tlsBroker, pki.ClientTLS(t, nil), true},
		{"tls, broker cert from another CA", tlsBroker, rogue.ClientTLS(t, nil), false},
		{"mtls, client cert", mtlsBroker, pki.ClientTLS(t, &gwCert), true},
		{"mtls, no client cert", mtlsBroker, pki.ClientTLS(t, nil), false},
		{"mtls, client cert from another CA", mtlsBroker, pki.ClientTLS(t, &rogueCert), false},
		{"mtls, plaintext to the TLS port", mtlsBroker, nil, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := "gw" + string(rune('a'+i))
			col := testkit.NewCollector(t, testkit.CollectorOptions{URL: tc.broker.URL(true), TLS: pki.ClientTLS(t, &colCert)}, "velo/s/"+gw+"/#")
			url := tc.broker.URL(tc.tls != nil)
			if tc.tls == nil {
				url = "tcp://" + tc.broker.Addr()
			}
			tel, ups, stop := runTelemetry(t, url, tc.tls, gw)
			if tc.connect {
				col.Wait(t, 15*time.Second, "birth over TLS", func(m testkit.Message) bool {
					return m.Topic == "velo/s/"+gw+"/status" && testkit.Field(m, "state") == "online"
				})
				if _, err := tel.Event(map[string]string{"kind": "tls-test"}); err != nil {
					t.Fatal(err)
				}
				col.Wait(t, 10*time.Second, "event over TLS", func(m testkit.Message) bool { return testkit.Field(m, "kind") == "tls-test" })
				return
			}
			time.Sleep(3 * time.Second) // several attempts at 100–500 ms backoff
			stop()
			if n := ups.Load(); n != 0 {
				t.Errorf("%d sessions established", n)
			}
			if len(col.All()) != 0 {
				t.Errorf("messages got through: %d", len(col.All()))
			}
		})
	}
}

// Presence: a gateway killed with SIGKILL shows offline
// (the LWT) at once; its LWT carries a higher sequence number than its
// birth and a lower one than the next birth, so a consumer keeping the highest sequence never lets a stale
// offline overwrite a newer online.
func TestPresenceLWTAndSequence(t *testing.T) {
	t.Parallel()
	b := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	col := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false)}, "velo/s/g/status")
	outbox := filepath.Join(t.TempDir(), "outbox.db")
	p1 := startPublisher(t, outbox, b.URL(false), 1, 5*time.Second)
	on1 := col.Wait(t, 15*time.Second, "online", func(m testkit.Message) bool { return testkit.Field(m, "state") == "online" })
	killedAt := time.Now()
	_ = p1.cmd.Process.Signal(syscall.SIGKILL)
	<-p1.exited
	off := col.Wait(t, 1500*time.Millisecond*15/10+5*time.Second, "offline (LWT)", func(m testkit.Message) bool {
		return testkit.Field(m, "state") == "offline" && m.Seq > 0
	})
	lwtDelay := time.Since(killedAt)
	if !strings.Contains(testkit.Field(off, "reason"), "connection lost") {
		t.Errorf("offline payload %s", off.Payload)
	}
	p2 := startPublisher(t, outbox, b.URL(false), 1, 5*time.Second)
	on2 := col.Wait(t, 15*time.Second, "online again", func(m testkit.Message) bool { return testkit.Field(m, "state") == "online" && m.Seq != on1.Seq })
	if !(on1.Seq < off.Seq && off.Seq < on2.Seq) {
		t.Errorf("sequence numbers: online %d, LWT offline %d, online again %d", on1.Seq, off.Seq, on2.Seq)
	}
	// A consumer applying "highest seq wins" to every status seen ends online.
	var best testkit.Message
	for _, m := range col.All() {
		if m.Seq > best.Seq {
			best = m
		}
	}
	if testkit.Field(best, "state") != "online" {
		t.Errorf("highest-sequence status is %s", best.Payload)
	}
	t.Logf("FIGURES LWT visible %v after SIGKILL; status seq: online %d < LWT offline %d < next online %d", lwtDelay.Round(time.Millisecond), on1.Seq, off.Seq, on2.Seq)
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.exited
}

// 200 broker connection losses (cut under the client) while events flow:
// each is followed by a reconnect; goroutines and fds come back (±2) and
// every saved event is delivered.
//
// Not parallel, for the same reason as the camera cycles.
func TestBrokerReconnectCyclesNoLeak(t *testing.T) {
	const cycles = 200
	b := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	px := testkit.NewCutProxy(t, b.Addr())
	col := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false)}, "velo/s/cyc/events")
	tel, ups, stop := runTelemetry(t, "tcp://"+px.Ln.Addr().String(), nil, "cyc")
	var base, baseFD int
	saved := 0
	for i := 0; i < cycles; i++ {
		// More than the 10 s connect timeout: an attempt that stalls under
		// load is abandoned and retried, which is a reconnect, not a leak.
		for deadline := time.Now().Add(25 * time.Second); int(ups.Load()) <= i; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: no reconnect", i)
			}
		}
		if _, err := tel.Event(map[string]int{"cycle": i}); err != nil {
			t.Fatal(err)
		}
		saved++
		if i == 5 {
			base, baseFD = testkit.Settle(1<<30, 1<<30, 0)
		}
		time.Sleep(5 * time.Millisecond)
		px.Cut()
	}
	testkit.WaitFor(t, 20*time.Second, "all events delivered", func() bool {
		seen := map[uint64]bool{}
		for _, m := range col.All() {
			seen[m.Seq] = true
		}
		return len(seen) >= saved
	})
	g, f := testkit.Settle(base, baseFD, 2)
	stop()
	t.Logf("FIGURES %d broker reconnects: goroutines %d → %d, fds %d → %d; %d events saved, all delivered", cycles, base, g, baseFD, f, saved)
	if g > base+2 || f > baseFD+2 {
		t.Errorf("growth after %d reconnects: goroutines %d → %d, fds %d → %d", cycles, base, g, baseFD, f)
	}
}
