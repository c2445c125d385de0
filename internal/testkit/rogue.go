package testkit

import (
	"bufio"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RogueRTSP is an RTSP listener that challenges every request with the
// WWW-Authenticate values it was given and records every request it
// receives, with any Authorization header: it stands in for a host that
// collects credentials (a spoofed stream URI, or a camera offering only
// Basic).
type RogueRTSP struct {
	Addr       string
	challenges []string
	ln         net.Listener

	mu          sync.Mutex
	requests    []RogueRequest
	openOptions bool
}

// RogueRequest is one request the rogue listener received.
type RogueRequest struct {
	Method, URI, Authorization string
}

// StartRogueRTSP listens on a free port of host (a loopback address) and
// answers every request with 401 and the challenges, e.g.
// `Basic realm="cam"`. It closes when the test ends.
func StartRogueRTSP(t testing.TB, host string, challenges ...string) *RogueRTSP {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &RogueRTSP{Addr: ln.Addr().String(), challenges: challenges, ln: ln}
	go r.serve()
	t.Cleanup(func() { _ = ln.Close() })
	return r
}

// OpenOptions makes the listener answer OPTIONS with 200, unchallenged,
// as many cameras do; every other method is still challenged.
func (r *RogueRTSP) OpenOptions() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.openOptions = true
}

// Requests returns the requests received so far.
func (r *RogueRTSP) Requests() []RogueRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RogueRequest(nil), r.requests...)
}

// Authorizations returns the Authorization headers received so far.
func (r *RogueRTSP) Authorizations() []string {
	var out []string
	for _, q := range r.Requests() {
		if q.Authorization != "" {
			out = append(out, q.Authorization)
		}
	}
	return out
}

func (r *RogueRTSP) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.conn(c)
	}
}

// conn answers one connection's requests until the peer hangs up.
func (r *RogueRTSP) conn(c net.Conn) {
	defer c.Close()
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		if line == "" {
			continue
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
			if _, err := tp.R.Discard(n); err != nil {
				return
			}
		}
		f := strings.Fields(line)
		q := RogueRequest{Authorization: h.Get("Authorization")}
		if len(f) >= 2 {
			q.Method, q.URI = f[0], f[1]
		}
		r.mu.Lock()
		r.requests = append(r.requests, q)
		open := r.openOptions && q.Method == "OPTIONS"
		r.mu.Unlock()
		var b strings.Builder
		if open {
			fmt.Fprintf(&b, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", h.Get("CSeq"))
		} else {
			fmt.Fprintf(&b, "RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\n", h.Get("CSeq"))
			for _, ch := range r.challenges {
				fmt.Fprintf(&b, "WWW-Authenticate: %s\r\n", ch)
			}
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		if _, err := c.Write([]byte(b.String())); err != nil {
			return
		}
	}
}
