package relay_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"velo/masking/relay"
)

// A qop=auth answer counts its nonce uses: a repeated or lower count on
// the same nonce is refused, a higher one accepted.
func TestNonceCountReplayRefused(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	c := mustDial(t, "127.0.0.1", addr)
	nonce := challenge(t, c.mustDo(t, "DESCRIBE", read))["nonce"]
	for _, step := range []struct {
		nc, want int
	}{{1, 200}, {1, 401}, {3, 200}, {2, 401}, {3, 401}, {4, 200}} {
		r := c.mustDo(t, "DESCRIBE", read, digestQop(opUser, opPass, nonce, "DESCRIBE", read, step.nc, "c0ffee"))
		if r.status != step.want {
			t.Fatalf("nc=%d: %d, want %d", step.nc, r.status, step.want)
		}
	}
}

// An expired nonce is answered 401 with stale=true (no refusal audited),
// and the player's answer to the new nonce is accepted.
func TestExpiredNonceIsStale(t *testing.T) {
	var log accessLog
	s := startRelay(t, func(s *relay.Server) {
		s.Limits.NonceLifetime = 300 * time.Millisecond
		s.OnAccess = log.add
	})
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	c := mustDial(t, "127.0.0.1", addr)
	nonce := challenge(t, c.mustDo(t, "DESCRIBE", read))["nonce"]
	time.Sleep(400 * time.Millisecond)
	r := c.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, opPass, nonce, "DESCRIBE", read))
	ch := challenge(t, r)
	if r.status != 401 || ch["stale"] != "true" || ch["nonce"] == nonce {
		t.Fatalf("expired nonce: %d %v, want 401 with stale=true and a new nonce", r.status, ch)
	}
	if r := c.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, opPass, ch["nonce"], "DESCRIBE", read)); r.status != 200 {
		t.Fatalf("answer to the new nonce: %d", r.status)
	}
	if got := log.all(); len(got) != 0 {
		t.Fatalf("a stale nonce was audited as a refusal: %v", got)
	}
}

// Failed logins are answered after a pause that grows per source, on the
// attacker's own connection: the operator, from another address, logs in
// at once meanwhile.
func TestFailurePauseIsPerSource(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	at := mustDial(t, "127.0.0.9", addr)
	var last time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 4; i++ {
			nonce := challenge(t, at.mustDo(t, "DESCRIBE", read))["nonce"]
			t0 := time.Now()
			at.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, "guess", nonce, "DESCRIBE", read))
			last = time.Since(t0)
		}
	})
	time.Sleep(800 * time.Millisecond) // the attacker is in its third pause
	op := mustDial(t, "127.0.0.1", addr)
	t0 := time.Now()
	nonce := challenge(t, op.mustDo(t, "DESCRIBE", read))["nonce"]
	st := op.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, opPass, nonce, "DESCRIBE", read)).status
	opTime := time.Since(t0)
	wg.Wait()
	t.Logf("FIGURE failure pause: attacker's 4th refusal after %v; the operator logged in in %v meanwhile", last.Round(time.Millisecond), opTime.Round(time.Millisecond))
	if last < time.Second {
		t.Fatalf("the 4th failed login was answered after %v, want a pause of at least 1 s", last)
	}
	if st != 200 || opTime > 300*time.Millisecond {
		t.Fatalf("the operator got %d after %v while the attacker was paused", st, opTime)
	}
}

// An attacker that does not wait for its 401 (it closes the connection and
// guesses again on a new one) gains nothing: while its address is in a
// pause, every answer from it, right or wrong, is held until the pause ends.
func TestEarlyAbortGainsNothing(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	for i := 0; i < 3; i++ { // three quick guesses, each abandoned at once
		c := mustDial(t, "127.0.0.9", addr)
		nonce := challenge(t, c.mustDo(t, "DESCRIBE", read))["nonce"]
		if _, err := fmt.Fprintf(c.c, "DESCRIBE %s RTSP/1.0\r\nCSeq: 9\r\n%s\r\n\r\n", read, digestNoQop(opUser, "guess", nonce, "DESCRIBE", read)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // no answer yet: the attacker assumes a failure
		c.c.Close()
	}
	c := mustDial(t, "127.0.0.9", addr)
	nonce := challenge(t, c.mustDo(t, "DESCRIBE", read))["nonce"]
	t0 := time.Now()
	st := c.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, opPass, nonce, "DESCRIBE", read)).status
	d := time.Since(t0)
	t.Logf("FIGURE early abort: the right answer after three abandoned guesses came back in %v (%d)", d.Round(time.Millisecond), st)
	if st != 200 || d < 500*time.Millisecond {
		t.Fatalf("right answer after three abandoned guesses: %d in %v; want 200 held for the pause (at least 0.5 s)", st, d)
	}
}
