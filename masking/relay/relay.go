// Package relay is an in-process RTSP server that serves H.264 streams
// published to it from this host: in-process (PublishAU or PublishH264,
// Velo's encoders) or by a local RTSP client (the simulator's ffmpeg) on a secret
// path from loopback. Readers read /NAME after RTSP digest authentication
// (nonces per connection, qop=auth with nonce counts, a pause after each
// failure), over plaintext RTSP or, with ListenTLS, RTSPS. Connections are
// capped per address and in total, and closed if they have not logged in
// by a deadline (Limits). Velo uses it to serve only masked streams.
//
// Lifecycle: New (no I/O), Start (binds), Close (stops, idempotent). Safe
// for concurrent use. It does not import gocv.
package relay

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Lookup returns a reader's secret, and whether the reader may read
// stream name. nil means no authentication (tests, demo only).
type Lookup func(user, name string) (Secret, bool)

// Secret checks a reader's digest response: a plaintext password, or the
// HA1 digests (hex) of user:realm:password — what a server keeps when it
// does not keep passwords.
type Secret struct {
	Password          string
	HA1MD5, HA1SHA256 string
}

// Password is the Secret of a plaintext password.
func Password(p string) Secret { return Secret{Password: p} }

func (s Secret) ha1(user, realm string, sha bool) string {
	switch {
	case s.Password != "" && sha:
		return sha256Hex(user + ":" + realm + ":" + s.Password)
	case s.Password != "":
		return md5Hex(user + ":" + realm + ":" + s.Password)
	case sha:
		return s.HA1SHA256
	default:
		return s.HA1MD5
	}
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

var reControl = regexp.MustCompile("^(.+/)trackID=[0-9]+$")

// Server is the relay.
type Server struct {
	addr     string
	lookup   Lookup
	realm    string
	secret   string
	srv      *gortsplib.Server
	tlsAddr  string
	tlsConf  *tls.Config
	gate     *gateListener
	failures failures
	done     chan struct{}

	// Limits, if set before Start, bound connections (see Limits).
	Limits Limits

	// OnAccess, if set before Start, is told of every reader that starts
	// playing (ok) and every reader refused (wrong credentials, not
	// allowed, a nonce not issued to its connection or replayed): who,
	// which stream, from where.
	OnAccess func(user, stream, remote string, ok bool)

	// OnListenerError, if set before Start, is told when accepting on
	// listen fails: once at the start of a streak of temporary errors
	// (out of file descriptors: retried with backoff, stopped false), and
	// when the listener stops for good (stopped true).
	OnListenerError func(listen string, err error, stopped bool)

	refused, cut atomic.Uint64

	mu         sync.Mutex
	readers    map[*gortsplib.ServerSession]string // session -> user:stream
	streams    map[string]*gortsplib.ServerStream
	publishers map[*gortsplib.ServerSession]string
	inproc     map[string]*Publisher // PublishAU's publishers by stream name
	denied     uint64
	closeOnce  sync.Once
}

// New returns a relay that will listen on addr (host:port), plaintext RTSP.
func New(addr, realm string, lookup Lookup) (*Server, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &Server{addr: addr, lookup: lookup, realm: realm, secret: hex.EncodeToString(b), done: make(chan struct{}),
		streams: map[string]*gortsplib.ServerStream{}, publishers: map[*gortsplib.ServerSession]string{},
		inproc: map[string]*Publisher{}, readers: map[*gortsplib.ServerSession]string{}}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: addr, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	return s, nil
}

// ListenTLS adds an RTSPS listener on addr (call before Start): the same
// streams and logins, over TLS with conf.
func (s *Server) ListenTLS(addr string, conf *tls.Config) {
	s.tlsAddr, s.tlsConf = addr, conf
}

// Start binds the listeners.
func (s *Server) Start() error {
	g := &gateListener{s: s, limits: s.Limits.withDefaults(), conns: make(chan net.Conn), done: make(chan struct{}), perIP: map[string]int{}}
	s.failures.max = g.limits.MaxPause
	for _, l := range []struct {
		addr string
		conf *tls.Config
	}{{s.addr, nil}, {s.tlsAddr, s.tlsConf}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			g.Close()
			return fmt.Errorf("relay: listen %s: %w", l.addr, err)
		}
		g.lns = append(g.lns, gateLn{ln: ln, tls: l.conf})
	}
	s.gate = g
	s.srv.Listen = func(string, string) (net.Listener, error) { return g, nil }
	if err := s.srv.Start(); err != nil {
		g.Close()
		return fmt.Errorf("relay: listen %s: %w", s.addr, err)
	}
	g.start()
	return nil
}

// Close stops the server and every stream.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, st := range s.streams {
			st.Close()
			delete(s.streams, k)
		}
	})
}

func (s *Server) listenerError(listen string, err error, stopped bool) {
	if s.OnListenerError != nil {
		s.OnListenerError(listen, err, stopped)
	}
}

// PublishURL is where a local encoder publishes stream name. It contains
// the relay's secret: never log it.
func (s *Server) PublishURL(name string) string {
	return fmt.Sprintf("rtsp://%s/publish/%s/%s", s.addr, s.secret, name)
}

// ReadURL is where readers read stream name (no credentials in it).
func (s *Server) ReadURL(name string) string { return fmt.Sprintf("rtsp://%s/%s", s.addr, name) }

// Publishing reports whether stream name is being published.
func (s *Server) Publishing(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[name] != nil
}

// Refused returns how many connections were closed unserved because their
// pool or address was full.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Cut returns how many connections were closed for not logging in in time.
func (s *Server) Cut() uint64 { return s.cut.Load() }

// Revoke closes every reader session whose user may no longer read its
// stream (still returns false): an operator removed by a reload, a camera
// taken from them, a stream password expired. It returns the sessions
// closed as (user, stream, remote) triples.
func (s *Server) Revoke(still func(user, stream string) bool) [][3]string {
	var cut []*gortsplib.ServerSession
	var who [][3]string
	s.mu.Lock()
	for sess, r := range s.readers {
		p := strings.SplitN(r, "\x00", 3)
		if !still(p[0], p[1]) {
			cut = append(cut, sess)
			who = append(who, [3]string{p[0], p[1], p[2]})
			delete(s.readers, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range cut { // outside s.mu: closing calls OnSessionClose
		sess.Close()
	}
	return who
}

// Denied returns how many reader requests were refused.
func (s *Server) Denied() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied
}

func (s *Server) publishName(p string) (string, bool) {
	p = strings.Trim(p, "/")
	pre := "publish/" + s.secret + "/"
	if !strings.HasPrefix(p, pre) {
		return "", false
	}
	name := strings.TrimPrefix(p, pre)
	return name, name != "" && !strings.Contains(name, "/")
}

// checkReader authenticates a reader's request on its connection: nil
// and the user when it may read stream name, else the response to send.
func (s *Server) checkReader(req *base.Request, name string, gc *guardedConn) (*base.Response, string) {
	if s.lookup == nil {
		gc.loggedIn()
		return nil, ""
	}
	now := time.Now()
	a, err := parseDigest(req.Header["Authorization"])
	if err != nil {
		return s.unauthorized(gc, now, false), "" // the challenge, not a refusal
	}
	gc.owePause(s.failures.wait(gc.ip, now)) // right or wrong, no answer before the source's pause ends
	switch gc.peekNonce(a.nonce, now) {
	case nonceStale:
		return s.unauthorized(gc, now, true), "" // the player answers the new nonce
	case nonceForeign:
		return s.deny(gc, a, name, now), ""
	}
	sec, ok := s.lookup(a.username, name)
	if !ok {
		sec = unknownUser // the same work and the same answer as a wrong password
	}
	if !validResponse(req, a, sec, s.realm) || !ok || gc.useNonce(a, now) != nonceOK {
		return s.deny(gc, a, name, now), ""
	}
	gc.loggedIn()
	return nil, a.username
}

// unknownUser is checked in place of a user the relay does not know.
var unknownUser = Password(newNonce())

// unauthorized is a 401 with a fresh nonce for this connection.
func (s *Server) unauthorized(gc *guardedConn, now time.Time, stale bool) *base.Response {
	return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
		"WWW-Authenticate": challenge(s.realm, gc.issueNonce(now), stale),
	}}
}

// deny refuses a login: counted, told to OnAccess, answered with a 401
// after a pause that grows with the source's failures (see failures). The 401 repeats
// the nonce the player answered when it is this connection's (a player
// seeing the same challenge again gives up rather than retrying forever),
// else it carries a fresh one.
func (s *Server) deny(gc *guardedConn, a digestAuth, name string, now time.Time) *base.Response {
	s.mu.Lock()
	s.denied++
	s.mu.Unlock()
	if s.OnAccess != nil {
		s.OnAccess(a.username, name, gc.RemoteAddr().String(), false)
	}
	gc.owePause(s.failures.record(gc.ip, now))
	if gc.peekNonce(a.nonce, now) != nonceOK {
		return s.unauthorized(gc, now, false)
	}
	return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
		"WWW-Authenticate": challenge(s.realm, a.nonce, false),
	}}
}

// OnResponse implements gortsplib.ServerHandlerOnResponse: a refusal goes
// out after its pause, on the connection's own goroutine.
func (s *Server) OnResponse(sc *gortsplib.ServerConn, _ *base.Response) {
	if gc := guarded(sc.NetConn()); gc != nil {
		gc.takePause(s.done)
	}
}

// readerStream authenticates a reader and returns the stream it asked for.
func (s *Server) readerStream(req *base.Request, path string, conn *gortsplib.ServerConn, sess *gortsplib.ServerSession) (*base.Response, *gortsplib.ServerStream, error) {
	name := readerName(path)
	gc := guarded(conn.NetConn())
	if gc == nil {
		return &base.Response{StatusCode: base.StatusForbidden}, nil, nil
	}
	remote := gc.RemoteAddr().String()
	r, user := s.checkReader(req, name, gc)
	if r != nil {
		return r, nil, nil
	}
	s.mu.Lock()
	st := s.streams[name]
	if sess != nil && st != nil {
		s.readers[sess] = user + "\x00" + name + "\x00" + remote
	}
	s.mu.Unlock()
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func readerName(p string) string {
	p = strings.Trim(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 { // SETUP: /name/trackID=0
		p = p[:i]
	}
	return p
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.readers, ctx.Session)
	if name, ok := s.publishers[ctx.Session]; ok {
		delete(s.publishers, ctx.Session)
		if st := s.streams[name]; st != nil {
			st.Close()
			delete(s.streams, name)
		}
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return s.readerStream(ctx.Request, ctx.Path, ctx.Conn, nil)
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: only loopback
// clients that know the secret may publish.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	name, ok := s.publishName(ctx.Path)
	if !ok {
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	if ip, _, err := net.SplitHostPort(ctx.Conn.NetConn().RemoteAddr().String()); err != nil || !net.ParseIP(ip).IsLoopback() {
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.streams[name]; old != nil {
		old.Close()
		for sess, n := range s.publishers {
			if n == name {
				sess.Close()
				delete(s.publishers, sess)
			}
		}
	}
	s.streams[name] = gortsplib.NewServerStream(s.srv, ctx.Description)
	s.publishers[ctx.Session] = name
	if gc := guarded(ctx.Conn.NetConn()); gc != nil {
		gc.loggedIn() // a local publisher that knows the secret path
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if _, ok := s.publishName(strings.TrimSuffix(ctx.Path, "/"+lastElem(ctx.Path))); ok && ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if _, ok := s.publishName(ctx.Path); ok && ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return s.readerStream(ctx.Request, ctx.Path, ctx.Conn, ctx.Session)
}

func lastElem(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s.mu.Lock()
	who, ok := s.readers[ctx.Session]
	s.mu.Unlock()
	if ok && s.OnAccess != nil {
		p := strings.SplitN(who, "\x00", 3)
		s.OnAccess(p[0], p[1], p[2], true)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord: packets from the
// publisher go to every reader.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s.mu.Lock()
	st := s.streams[s.publishers[ctx.Session]]
	s.mu.Unlock()
	if st == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = st.WritePacketRTP(medi, pkt)
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
