package agent

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// RELIABILITY.md "Security": TLS and mutual TLS to the broker with a
// generated CA. Sessions to a broker with a certificate from another CA,
// and mutual-TLS sessions without a (good) client certificate: 0.
func TestTelemetryTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t, "velo-test-ca")
	rogue := newPKI(t, "rogue-ca")
	tlsBroker := startMosquitto(t, mosqOpts{TLS: pki})
	mtlsBroker := startMosquitto(t, mosqOpts{TLS: pki, RequireCert: true})
	gwCert := pki.issue(t, "gw-a", false)
	rogueCert := rogue.issue(t, "gw-a", false)
	colCert := pki.issue(t, "central", false)

	cases := []struct {
		name    string
		broker  *mosquitto
		tls     *tls.Config
		connect bool
	}{
		{"tls, trusted CA", tlsBroker, pki.clientTLS(t, nil), true},
		{"tls, broker cert from another CA", tlsBroker, rogue.clientTLS(t, nil), false},
		{"mtls, client cert", mtlsBroker, pki.clientTLS(t, &gwCert), true},
		{"mtls, no client cert", mtlsBroker, pki.clientTLS(t, nil), false},
		{"mtls, client cert from another CA", mtlsBroker, pki.clientTLS(t, &rogueCert), false},
		{"mtls, plaintext to the TLS port", mtlsBroker, nil, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := "gw" + string(rune('a'+i))
			col := newCollector(t, collectorOpts{URL: tc.broker.url(true), TLS: pki.clientTLS(t, &colCert)}, "velo/s/"+gw+"/#")
			url := tc.broker.url(tc.tls != nil)
			if tc.tls == nil {
				url = "tcp://" + tc.broker.addr()
			}
			tel, ups, stop := runTelemetry(t, url, tc.tls, gw)
			if tc.connect {
				col.wait(t, 15*time.Second, "birth over TLS", func(m recvMsg) bool { return m.Topic == "velo/s/"+gw+"/status" && field(m, "state") == "online" })
				if _, err := tel.Event(map[string]string{"kind": "tls-test"}); err != nil {
					t.Fatal(err)
				}
				col.wait(t, 10*time.Second, "event over TLS", func(m recvMsg) bool { return field(m, "kind") == "tls-test" })
				return
			}
			time.Sleep(3 * time.Second) // several attempts at 100–500 ms backoff
			stop()
			if n := ups.Load(); n != 0 {
				t.Errorf("%d sessions established", n)
			}
			if len(col.all()) != 0 {
				t.Errorf("messages got through: %d", len(col.all()))
			}
		})
	}
}

// RELIABILITY.md "Presence": a gateway killed with SIGKILL shows offline
// (the LWT) at once; its LWT carries a higher sequence number than its
// birth and a lower one than the next birth, so a consumer keeping the highest sequence never lets a stale
// offline overwrite a newer online.
func TestPresenceLWTAndSequence(t *testing.T) {
	t.Parallel()
	b := startMosquitto(t, mosqOpts{})
	col := newCollector(t, collectorOpts{URL: b.url(false)}, "velo/s/g/status")
	outbox := filepath.Join(t.TempDir(), "outbox.db")
	p1 := startPublisher(t, outbox, b.url(false), 1, 5*time.Second)
	on1 := col.wait(t, 15*time.Second, "online", func(m recvMsg) bool { return field(m, "state") == "online" })
	killedAt := time.Now()
	_ = p1.cmd.Process.Signal(syscall.SIGKILL)
	<-p1.exited
	off := col.wait(t, 1500*time.Millisecond*15/10+5*time.Second, "offline (LWT)", func(m recvMsg) bool {
		return field(m, "state") == "offline" && m.Seq > 0
	})
	lwtDelay := time.Since(killedAt)
	if !strings.Contains(field(off, "reason"), "connection lost") {
		t.Errorf("offline payload %s", off.Payload)
	}
	p2 := startPublisher(t, outbox, b.url(false), 1, 5*time.Second)
	on2 := col.wait(t, 15*time.Second, "online again", func(m recvMsg) bool { return field(m, "state") == "online" && m.Seq != on1.Seq })
	if !(on1.Seq < off.Seq && off.Seq < on2.Seq) {
		t.Errorf("sequence numbers: online %d, LWT offline %d, online again %d", on1.Seq, off.Seq, on2.Seq)
	}
	// A consumer applying "highest seq wins" to every status seen ends online.
	var best recvMsg
	for _, m := range col.all() {
		if m.Seq > best.Seq {
			best = m
		}
	}
	if field(best, "state") != "online" {
		t.Errorf("highest-sequence status is %s", best.Payload)
	}
	t.Logf("FIGURES LWT visible %v after SIGKILL; status seq: online %d < LWT offline %d < next online %d", lwtDelay.Round(time.Millisecond), on1.Seq, off.Seq, on2.Seq)
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.exited
}
