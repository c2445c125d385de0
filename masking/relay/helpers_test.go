package relay_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking/relay"
)

// The test site's one operator and the stream it may read.
const (
	opUser   = "ops"
	opPass   = "correct-horse-battery"
	streamID = "cam1"
	realm    = "velo"
)

// lookup allows opUser on streamID only.
func lookup(user, name string) (relay.Secret, bool) {
	if user == opUser && name == streamID {
		return relay.Password(opPass), true
	}
	return relay.Secret{}, false
}

// startRelay starts a relay on 127.0.0.1 with lookup; configure, if not
// nil, runs before Start.
func startRelay(t *testing.T, configure func(*relay.Server)) *relay.Server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	s, err := relay.New(addr, realm, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var (
	h264Once sync.Once
	h264AUs  [][][]byte
	h264Err  error
)

// testAUs encodes two seconds of ffmpeg's test pattern (real H.264 from
// libx264, a keyframe every 10 frames) and splits it into access units.
func testAUs(t *testing.T) [][][]byte {
	t.Helper()
	h264Once.Do(func() {
		dir, err := os.MkdirTemp("", "relay-h264")
		if err != nil {
			h264Err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "t.h264")
		cmd := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "2",
			"-c:v", "libx264", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", "-x264-params", "repeat-headers=1", "-f", "h264", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			h264Err = fmt.Errorf("ffmpeg: %v: %s", err, b)
			return
		}
		data, err := os.ReadFile(out)
		if err != nil {
			h264Err = err
			return
		}
		h264AUs = splitAUs(data)
	})
	if h264Err != nil {
		t.Fatal(h264Err)
	}
	return h264AUs
}

// splitAUs splits an Annex B byte stream into access units, one per
// picture (a slice NAL ends the unit: the test stream has one slice per
// picture).
func splitAUs(data []byte) [][][]byte {
	var aus [][][]byte
	var cur [][]byte
	for _, n := range bytes.Split(data, []byte{0, 0, 1}) {
		n = bytes.TrimRight(n, "\x00")
		if len(n) == 0 {
			continue
		}
		cur = append(cur, n)
		if t := n[0] & 0x1f; t == 1 || t == 5 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	return aus
}

// publish feeds the test pattern into stream name at 10 fps until the
// test ends.
func publish(t *testing.T, s *relay.Server, name string) {
	t.Helper()
	aus := testAUs(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if err := s.PublishAU(name, aus[i%len(aus)]); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	testkit.WaitFor(t, 5*time.Second, "the stream to be published", func() bool { return s.Publishing(name) })
}

// rtspConn is a raw RTSP/1.0 client connection: the attacker's tool.
type rtspConn struct {
	c    net.Conn
	r    *bufio.Reader
	cseq int
}

type rtspResp struct {
	status int
	header textproto.MIMEHeader
	body   []byte
}

// dialFrom connects to addr from the loopback address src (another host,
// as far as the relay can tell).
func dialFrom(src, addr string) (*rtspConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	return &rtspConn{c: c, r: bufio.NewReader(c)}, nil
}

func mustDial(t *testing.T, src, addr string) *rtspConn {
	t.Helper()
	c, err := dialFrom(src, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.c.Close() })
	return c
}

// do sends one request and reads its response. extra are header lines.
func (c *rtspConn) do(method, url string, extra ...string) (*rtspResp, error) {
	c.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, url, c.cseq)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = c.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *rtspConn) read() (*rtspResp, error) {
	tp := textproto.NewReader(c.r)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "RTSP/1.0" {
		return nil, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	r := &rtspResp{status: code, header: h}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		r.body = make([]byte, n)
		if _, err := io.ReadFull(c.r, r.body); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (c *rtspConn) mustDo(t *testing.T, method, url string, extra ...string) *rtspResp {
	t.Helper()
	r, err := c.do(method, url, extra...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// challenge parses a WWW-Authenticate digest challenge's parameters.
func challenge(t *testing.T, r *rtspResp) map[string]string {
	t.Helper()
	v := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(v, "Digest ") {
		t.Fatalf("status %d: no digest challenge in %q", r.status, v)
	}
	return params(strings.TrimPrefix(v, "Digest "))
}

// params splits k="v", k=v pairs.
func params(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(strings.TrimSpace(s), ",") {
		s = strings.TrimSpace(s)
		i := strings.IndexByte(s, '=')
		if i < 0 {
			break
		}
		k := strings.ToLower(strings.TrimSpace(s[:i]))
		s = s[i+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			j := strings.IndexByte(s[1:], '"')
			if j < 0 {
				break
			}
			v, s = s[1:1+j], s[2+j:]
		} else {
			j := strings.IndexByte(s, ',')
			if j < 0 {
				j = len(s)
			}
			v, s = strings.TrimSpace(s[:j]), s[j:]
		}
		out[k] = v
	}
	return out
}

func md5h(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digestNoQop is an RFC 2069 answer (what many RTSP players send).
func digestNoQop(user, pass, nonce, method, uri string) string {
	resp := md5h(md5h(user+":"+realm+":"+pass) + ":" + nonce + ":" + md5h(method+":"+uri))
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`, user, realm, nonce, uri, resp)
}

// digestQop is an RFC 2617 qop=auth answer with nonce count nc.
func digestQop(user, pass, nonce, method, uri string, nc int, cnonce string) string {
	ncs := fmt.Sprintf("%08x", nc)
	resp := md5h(md5h(user+":"+realm+":"+pass) + ":" + nonce + ":" + ncs + ":" + cnonce + ":auth:" + md5h(method+":"+uri))
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, nc=%s, cnonce="%s", response="%s"`,
		user, realm, nonce, uri, ncs, cnonce, resp)
}

// accessLog records the relay's OnAccess calls.
type accessLog struct {
	mu  sync.Mutex
	got []string
}

func (l *accessLog) add(user, stream, remote string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	host, _, _ := net.SplitHostPort(remote)
	l.got = append(l.got, fmt.Sprintf("%s %s %s %v", user, stream, host, ok))
}

func (l *accessLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}
