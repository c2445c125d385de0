package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestMain doubles as a child process: with VELO_TEST_PUBLISHER set, the
// test binary is a gateway publisher (outbox + telemetry) generating events
// at a fixed rate, so a test can kill -9 it.
func TestMain(m *testing.M) {
	if os.Getenv("VELO_TEST_PUBLISHER") != "" {
		os.Exit(publisherChild())
	}
	os.Exit(m.Run())
}

// publisherChild prints "SAVED <seq>" after each event is durably saved,
// "UP <unixms>" / "LOSS <unixms> <reason>" on connection changes and
// "HEAP <bytes>" every second. SIGTERM stops generating and waits for the
// outbox to drain.
func publisherChild() int {
	env := func(k string) string { return os.Getenv("VELO_TEST_" + k) }
	rate, _ := strconv.Atoi(env("RATE"))
	ack, _ := time.ParseDuration(env("ACK_TIMEOUT"))
	out := bufio.NewWriter(os.Stdout)
	lines := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range lines {
			out.WriteString(l + "\n")
			if len(lines) == 0 {
				out.Flush()
			}
		}
		out.Flush()
	}()
	ob, err := OpenOutbox(env("OUTBOX"), 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	tel, err := NewTelemetry(TelemetryConfig{Site: "s", Gateway: "g", URL: env("BROKER"), Outbox: ob,
		AckTimeout: ack, BackoffMin: 200 * time.Millisecond, BackoffMax: 2 * time.Second,
		Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		OnConnection: func(up bool, reason string) {
			if up {
				lines <- fmt.Sprintf("UP %d", time.Now().UnixMilli())
			} else {
				lines <- fmt.Sprintf("LOSS %d %s", time.Now().UnixMilli(), reason)
			}
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := context.WithCancel(context.Background())
	telDone := make(chan struct{})
	go func() { tel.Run(ctx); close(telDone) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	heap := time.NewTicker(time.Second)
	for n := 0; ; n++ {
		select {
		case <-sig:
			for tel.Connected() && ob.Stats().Pending > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			lines <- fmt.Sprintf("DRAINED %d", ob.Stats().Pending)
			stop()
			<-telDone
			ob.Close()
			close(lines)
			<-done
			return 0
		case <-heap.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			lines <- fmt.Sprintf("HEAP %d", ms.HeapAlloc)
		case <-tick.C:
			seq, err := tel.Event(map[string]any{"kind": "test", "n": n})
			if err != nil {
				fmt.Fprintln(os.Stderr, "event:", err)
				continue
			}
			lines <- fmt.Sprintf("SAVED %d", seq)
		}
	}
}
