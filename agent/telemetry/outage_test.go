package telemetry

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"velo/internal/testkit"
)

// publisher is a child process running publisherChild.
type publisher struct {
	cmd *exec.Cmd

	mu      sync.Mutex
	saved   []uint64
	ups     []time.Time
	losses  []time.Time
	reasons []string
	heap    []uint64
	drained bool
	exited  chan struct{}
}

func startPublisher(t *testing.T, outbox, broker string, rate int, ack time.Duration) *publisher {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VELO_TEST_PUBLISHER=1", "VELO_TEST_OUTBOX="+outbox, "VELO_TEST_BROKER="+broker,
		fmt.Sprintf("VELO_TEST_RATE=%d", rate), "VELO_TEST_ACK_TIMEOUT="+ack.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &publisher{cmd: cmd, exited: make(chan struct{})}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseUint(f[1], 10, 64)
			p.mu.Lock()
			switch f[0] {
			case "SAVED":
				p.saved = append(p.saved, v)
			case "UP":
				p.ups = append(p.ups, time.UnixMilli(int64(v)))
			case "LOSS":
				p.losses = append(p.losses, time.UnixMilli(int64(v)))
				p.reasons = append(p.reasons, strings.Join(f[2:], " "))
			case "HEAP":
				p.heap = append(p.heap, v)
			case "DRAINED":
				p.drained = v == 0
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

func (p *publisher) savedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.saved)
}

func (p *publisher) lossAfter(t0 time.Time) (time.Time, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.losses {
		if !l.Before(t0) {
			return l, p.reasons[i], true
		}
	}
	return time.Time{}, "", false
}

func (p *publisher) upAfter(t0 time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.ups {
		if !u.Before(t0) {
			return true
		}
	}
	return false
}

// Broker faults: events flow at 40/s through a frozen
// broker (SIGSTOP: the TCP connection stays up, nothing is acknowledged)
// and then a 2-minute outage (Mosquitto stopped), during which the
// publisher is killed with SIGKILL and restarted on the same outbox. Every
// event acknowledged as saved must be delivered, in sequence order;
// duplicates are allowed (QoS 1) and removable by sequence number.
func TestBrokerOutageLosesNothingSaved(t *testing.T) {
	t.Parallel()
	const rate = 40
	outage := 2 * time.Minute
	b := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	sub := testkit.NewCollector(t, testkit.CollectorOptions{URL: b.URL(false), ClientID: "outage-collector"}, "velo/s/g/events")
	outbox := filepath.Join(t.TempDir(), "outbox.db")
	p1 := startPublisher(t, outbox, b.URL(false), rate, 10*time.Second)
	testkit.WaitFor(t, 15*time.Second, "first delivery", func() bool { return len(sub.All()) > 20 })

	// Frozen broker while busy: detection by the ack watchdog.
	frozeAt := time.Now()
	b.Signal(syscall.SIGSTOP)
	testkit.WaitFor(t, 60*time.Second, "loss detection with the broker frozen", func() bool { _, _, ok := p1.lossAfter(frozeAt); return ok })
	lossAt, reason, _ := p1.lossAfter(frozeAt)
	detect := lossAt.Sub(frozeAt)
	time.Sleep(2 * time.Second)
	b.Signal(syscall.SIGCONT)
	thawAt := time.Now()
	testkit.WaitFor(t, 60*time.Second, "reconnect after thaw", func() bool { return p1.upAfter(thawAt) })

	// Outage: broker stopped for 2 minutes; kill -9 half way.
	stopAt := time.Now()
	b.Stop()
	savedBefore := p1.savedCount()
	time.Sleep(outage / 2)
	_ = p1.cmd.Process.Signal(syscall.SIGKILL)
	<-p1.exited
	savedByP1 := p1.savedCount()
	p2 := startPublisher(t, outbox, b.URL(false), rate, 10*time.Second)
	time.Sleep(outage - time.Since(stopAt))
	outageLen := time.Since(stopAt)
	duringOutage := savedByP1 - savedBefore + p2.savedCount()
	b.Start()
	restartAt := time.Now()
	testkit.WaitFor(t, 60*time.Second, "publisher reconnect after the outage", func() bool { return p2.upAfter(restartAt) })
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.exited:
	case <-time.After(90 * time.Second):
		t.Fatal("publisher did not drain its outbox")
	}
	if !p2.drained {
		t.Error("publisher exited with messages still pending")
	}
	drainedIn := time.Since(restartAt)

	saved := map[uint64]bool{}
	for _, p := range []*publisher{p1, p2} {
		for _, s := range p.saved {
			saved[s] = true
		}
	}
	testkit.WaitFor(t, 30*time.Second, "collector to receive every saved event", func() bool {
		got := map[uint64]bool{}
		for _, m := range sub.All() {
			got[m.Seq] = true
		}
		for s := range saved {
			if !got[s] {
				return false
			}
		}
		return true
	})
	msgs := sub.All()
	seen := map[uint64]bool{}
	dups, disorder := 0, 0
	var last uint64
	for _, m := range msgs {
		if seen[m.Seq] {
			dups++
			continue
		}
		seen[m.Seq] = true
		if m.Seq < last {
			disorder++
		}
		last = m.Seq
	}
	lost := 0
	for s := range saved {
		if !seen[s] {
			lost++
		}
	}
	heapGrowth := func(p *publisher) int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.heap) < 2 {
			return 0
		}
		lo, hi := p.heap[0], p.heap[0]
		for _, h := range p.heap {
			lo, hi = min(lo, h), max(hi, h)
		}
		return int64(hi - lo)
	}
	t.Logf("FIGURES outage %v (broker stopped), frozen-broker detection %v (%s); saved %d (during outage %d, %.1f/s), delivered unique %d, duplicates %d, lost %d, order violations %d; backlog drained %v after restart; kill -9 mid-outage: events saved by the killed process %d, of them lost 0 required; heap spread p1 %.1f MB p2 %.1f MB",
		outageLen.Round(time.Second), detect.Round(100*time.Millisecond), reason, len(saved), duringOutage, float64(duringOutage)/outageLen.Seconds(),
		len(seen), dups, lost, disorder, drainedIn.Round(100*time.Millisecond), savedByP1, float64(heapGrowth(p1))/1e6, float64(heapGrowth(p2))/1e6)
	if lost != 0 || disorder != 0 {
		t.Errorf("lost %d, order violations %d", lost, disorder)
	}
	if detect > 45*time.Second {
		t.Errorf("frozen broker detected after %v (goal ≤ 45 s)", detect)
	}
	if float64(duringOutage) < 0.9*rate*outage.Seconds() || outageLen < outage {
		t.Errorf("outage too small: %d events in %v", duringOutage, outageLen)
	}
}
