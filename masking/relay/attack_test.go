package relay_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"velo/masking/relay"
)

func hostOf(t *testing.T, s *relay.Server) string {
	t.Helper()
	u, err := url.Parse(s.ReadURL("x"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// A sniffed Authorization header, replayed on a new connection, opens
// nothing: the nonce it carries was issued to the operator's connection.
func TestReplayedDigestRefused(t *testing.T) {
	var log accessLog
	s := startRelay(t, func(s *relay.Server) { s.OnAccess = log.add })
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	setup := read + "/trackID=0"
	transport := "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"

	op := mustDial(t, "127.0.0.1", addr)
	nonce := challenge(t, op.mustDo(t, "DESCRIBE", read))["nonce"]
	describeAuth := digestNoQop(opUser, opPass, nonce, "DESCRIBE", read)
	setupAuth := digestNoQop(opUser, opPass, nonce, "SETUP", setup)
	if r := op.mustDo(t, "DESCRIBE", read, describeAuth); r.status != 200 {
		t.Fatalf("operator's DESCRIBE: %d", r.status)
	}
	if r := op.mustDo(t, "SETUP", setup, setupAuth, transport); r.status != 200 {
		t.Fatalf("operator's SETUP: %d", r.status)
	}

	// The attacker replays both headers from another host.
	at := mustDial(t, "127.0.0.9", addr)
	r := at.mustDo(t, "DESCRIBE", read, describeAuth)
	rs := at.mustDo(t, "SETUP", setup, setupAuth, transport)
	play := 0
	if rs.status == 200 {
		play = at.mustDo(t, "PLAY", read, "Session: "+strings.Split(rs.header.Get("Session"), ";")[0]).status
	}
	t.Logf("FIGURE replayed header: DESCRIBE %d, SETUP %d, PLAY %d (0: not sent)", r.status, rs.status, play)
	if r.status != 401 || rs.status != 401 {
		t.Fatalf("replayed login on a new connection: DESCRIBE %d, SETUP %d, PLAY %d; want 401, 401", r.status, rs.status, play)
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, opUser+" "+streamID+" 127.0.0.9 true") {
			t.Fatalf("the replay was audited as the operator: %v", log.all())
		}
	}
}

// An unknown user and a known user with a wrong password get the same
// answer, so the relay does not tell valid user names apart.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	s := startRelay(t, nil)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	answer := func(user, pass string) (int, []string) {
		c := mustDial(t, "127.0.0.1", addr)
		nonce := challenge(t, c.mustDo(t, "DESCRIBE", read))["nonce"]
		r := c.mustDo(t, "DESCRIBE", read, digestNoQop(user, pass, nonce, "DESCRIBE", read))
		var keys []string
		if r.status == 401 {
			for k := range challenge(t, r) {
				keys = append(keys, k)
			}
		}
		return r.status, keys
	}
	wrongPass, kw := answer(opUser, "wrong")
	unknown, ku := answer("nobody", "wrong")
	if wrongPass != 401 || unknown != 401 || len(kw) != len(ku) {
		t.Fatalf("wrong password: %d %v; unknown user: %d %v; want the same 401", wrongPass, kw, unknown, ku)
	}
}

// dialMany opens n connections to addr spread over the loopback sources
// srcs, tolerating refusals (a refused connection is not held).
func dialMany(n int, addr string, srcs []string) []net.Conn {
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := dialFrom(srcs[i%len(srcs)], addr)
		if err == nil {
			conns = append(conns, c.c)
		}
	}
	return conns
}

// held counts the connections the server still keeps open: a read
// that times out (rather than EOF or reset) means the peer is still there.
func held(conns []net.Conn) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

func loopbacks(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s.%d", prefix, i))
	}
	return out
}

// 5,000 idle connections from one address, then from 100: the relay
// keeps only a few, and the operator on the gateway still gets video.
func TestIdleFloodIsCapped(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	for _, tc := range []struct {
		name string
		srcs []string
		max  int
	}{{"one address", []string{"127.0.0.2"}, 8}, {"100 addresses", loopbacks("127.0.3", 100), 64}} {
		conns := dialMany(5000, addr, tc.srcs)
		time.Sleep(500 * time.Millisecond)
		h := held(conns)
		t.Logf("FIGURE idle flood from %s: %d of 5000 connections held", tc.name, h)

		op := mustDial(t, "127.0.0.1", addr)
		nonce := challenge(t, op.mustDo(t, "DESCRIBE", read))["nonce"]
		st := op.mustDo(t, "DESCRIBE", read, digestNoQop(opUser, opPass, nonce, "DESCRIBE", read)).status
		op.c.Close()
		closeAll(conns)
		if h > tc.max {
			t.Fatalf("%s: %d of 5000 idle connections held, want at most %d", tc.name, h, tc.max)
		}
		if st != 200 {
			t.Fatalf("%s: the operator on the gateway got %d during the flood", tc.name, st)
		}
		time.Sleep(200 * time.Millisecond) // let the relay see them go
	}
}

// Slowloris: 300 requests that never end, one header line every 2 s, from
// 30 addresses. None is held past the login deadline (10 s by default).
func TestHalfSentRequestsAreCut(t *testing.T) {
	s := startRelay(t, nil)
	addr, read := hostOf(t, s), s.ReadURL(streamID)
	conns := dialMany(300, addr, loopbacks("127.0.4", 30))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			if _, err := fmt.Fprintf(c, "DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n", read); err != nil {
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Second):
				}
				if _, err := fmt.Fprintf(c, "X-Pad-%d: a\r\n", i); err != nil {
					return
				}
			}
		})
	}
	time.Sleep(12 * time.Second)
	close(stop)
	wg.Wait()
	h := held(conns)
	closeAll(conns)
	t.Logf("FIGURE slowloris: %d of %d half-sent requests held 12 s later", h, len(conns))
	if h != 0 {
		t.Fatalf("%d of %d half-sent requests still held after 12 s", h, len(conns))
	}
}

const emfileEnv = "VELO_RELAY_EMFILE_CHILD"

// With a low open-file limit, a flood that exhausts the relay's file
// descriptors must not close its listener for good: once the flood
// ends, a client is served again. The relay runs in a child process (the
// test binary again) so only the child has the low limit.
func TestListenerSurvivesEMFILE(t *testing.T) {
	if addr := os.Getenv(emfileEnv); addr != "" {
		emfileChild(addr)
		return
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerSurvivesEMFILE$")
	cmd.Env = append(os.Environ(), emfileEnv+"="+addr)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("child: %q", out.Text())
	}
	lines := make(chan string, 100)
	go func() {
		for out.Scan() {
			lines <- out.Text()
		}
		close(lines)
	}()

	conns := dialMany(400, addr, loopbacks("127.0.5", 100))
	time.Sleep(time.Second) // the child runs out of descriptors
	closeAll(conns)
	t0 := time.Now()
	var recovered time.Duration
	for time.Since(t0) < 10*time.Second {
		if c, err := dialFrom("127.0.0.1", addr); err == nil {
			r, err := c.do("OPTIONS", "rtsp://"+addr+"/")
			c.c.Close()
			if err == nil && r.status == 200 {
				recovered = time.Since(t0)
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("FIGURE EMFILE: %d connections against a 64-descriptor limit; served again %v after the flood ended", len(conns), recovered.Round(time.Millisecond))
	if recovered == 0 {
		t.Fatal("the listener never came back after running out of file descriptors")
	}
	stdin.Close()
	var notes []string
	for l := range lines {
		notes = append(notes, l)
		if l == "stopped" {
			t.Fatalf("child: the listener stopped for good: %v", notes)
		}
	}
	t.Logf("child: %v", notes)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// emfileChild serves a relay under a 64-descriptor limit until stdin closes.
func emfileChild(addr string) {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	s, err := relay.New(addr, realm, lookup)
	if err == nil {
		s.OnListenerError = func(listen string, err error, stopped bool) {
			fmt.Printf("listener %s: %v (stopped %v)\n", listen, err, stopped)
			if stopped {
				fmt.Println("stopped")
			}
		}
		err = s.Start()
	}
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}
