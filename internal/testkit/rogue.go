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
	byMethod    map[string][]string // challenges for one method, instead of challenges
	redirect    string              // answer DESCRIBE with 302 to this URL
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

// ChallengeMethod makes the listener challenge method with these
// challenges instead of the ones it was started with.
func (r *RogueRTSP) ChallengeMethod(method string, challenges ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byMethod == nil {
		r.byMethod = map[string][]string{}
	}
	r.byMethod[method] = challenges
}

// Redirect makes the listener answer DESCRIBE with 302 Found to location.
func (r *RogueRTSP) Redirect(location string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redirect = location
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
		if _, err := c.Write([]byte(r.reply(q, h.Get("CSeq")))); err != nil {
			return
		}
	}
}

// reply records q and answers it: 200 to an open OPTIONS, 302 to a
// redirected DESCRIBE, else 401 with the method's challenges.
func (r *RogueRTSP) reply(q RogueRequest, cseq string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, q)
	var b strings.Builder
	switch challenges, own := r.byMethod[q.Method]; {
	case r.openOptions && q.Method == "OPTIONS":
		fmt.Fprintf(&b, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", cseq)
	case r.redirect != "" && q.Method == "DESCRIBE":
		fmt.Fprintf(&b, "RTSP/1.0 302 Found\r\nCSeq: %s\r\nLocation: %s\r\n", cseq, r.redirect)
	default:
		if !own {
			challenges = r.challenges
		}
		fmt.Fprintf(&b, "RTSP/1.0 401 Unauthorized\r\nCSeq: %s\r\n", cseq)
		for _, ch := range challenges {
			fmt.Fprintf(&b, "WWW-Authenticate: %s\r\n", ch)
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}
