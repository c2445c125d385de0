package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The watchdog pings systemd only while the agent is healthy (its frame
// paths alive, hung captures under their bound), and says why it stopped.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "n.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // a ping every 50 ms
	var sick atomic.Bool
	sick.Store(true)
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdog(ctx, func() error {
			if sick.Load() {
				return errors.New(`camera "c": frame path blocked`)
			}
			return nil
		}, zerolog.New(&logs))
	}()
	pings := func(d time.Duration) int {
		n, buf := 0, make([]byte, 64)
		for end := time.Now().Add(d); time.Now().Before(end); {
			_ = nc.SetReadDeadline(end)
			k, err := nc.Read(buf)
			if err == nil && string(buf[:k]) == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	if n := pings(500 * time.Millisecond); n != 0 {
		t.Fatalf("%d pings while unhealthy", n)
	}
	sick.Store(false)
	if n := pings(500 * time.Millisecond); n < 3 {
		t.Fatalf("%d pings in 500 ms while healthy", n)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), `frame path blocked`) || !strings.Contains(logs.String(), "healthy again") {
		t.Fatalf("log does not say why the pings stopped and resumed:\n%s", logs.String())
	}
}
