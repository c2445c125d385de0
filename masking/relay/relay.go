// Package relay is an in-process RTSP server that serves H.264 streams
// published to it from this host: in-process (PublishAU or PublishH264,
// Velo's encoders) or by a local RTSP client (the simulator's ffmpeg) on a secret
// path from loopback. Readers read /NAME after RTSP digest authentication. Velo uses it to serve only
// masked streams; the camera simulator uses it to serve its scene.
//
// Lifecycle: New (no I/O), Start (binds), Close (stops, idempotent). Safe
// for concurrent use. It does not import gocv.
package relay

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
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

// validDigest checks an RTSP digest response (RFC 2069 style, as RTSP
// players send it: no qop) from HA1, in constant time.
func validDigest(req *base.Request, a headers.Authorization, user string, sec Secret, realm, nonce string) bool {
	if a.Method != headers.AuthMethodDigest || a.Nonce != nonce || a.Realm != realm || a.Username != user {
		return false
	}
	if got := req.URL.String(); a.URI != got {
		// In SETUP, VLC uses the stream's base URL, not the track's.
		m := reControl.FindStringSubmatch(got)
		if req.Method != base.Setup || m == nil || a.URI != m[1] {
			return false
		}
	}
	sha := a.Algorithm != nil && *a.Algorithm == headers.AuthAlgorithmSHA256
	if a.Algorithm != nil && !sha && *a.Algorithm != headers.AuthAlgorithmMD5 {
		return false
	}
	ha1 := sec.ha1(user, realm, sha)
	if ha1 == "" {
		return false
	}
	var want string
	if sha {
		want = sha256Hex(ha1 + ":" + nonce + ":" + sha256Hex(string(req.Method)+":"+a.URI))
	} else {
		want = md5Hex(ha1 + ":" + nonce + ":" + md5Hex(string(req.Method)+":"+a.URI))
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(a.Response)) == 1
}

// Server is the relay.
type Server struct {
	addr   string
	lookup Lookup
	realm  string
	secret string
	nonce  string
	srv    *gortsplib.Server

	// OnAccess, if set before Start, is told of every reader that starts
	// playing (ok) and every reader refused (wrong credentials, not
	// allowed): who, which stream, from where.
	OnAccess func(user, stream, remote string, ok bool)

	mu         sync.Mutex
	readers    map[*gortsplib.ServerSession]string // session -> user:stream
	streams    map[string]*gortsplib.ServerStream
	publishers map[*gortsplib.ServerSession]string
	inproc     map[string]*Publisher // PublishAU's publishers by stream name
	denied     uint64
	closeOnce  sync.Once
}

// New returns a relay that will listen on addr (host:port).
func New(addr, realm string, lookup Lookup) (*Server, error) {
	nonce, err := auth.GenerateNonce()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &Server{addr: addr, lookup: lookup, realm: realm, secret: hex.EncodeToString(b), nonce: nonce,
		streams: map[string]*gortsplib.ServerStream{}, publishers: map[*gortsplib.ServerSession]string{},
		inproc: map[string]*Publisher{}, readers: map[*gortsplib.ServerSession]string{}}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: addr, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	return s, nil
}

// Start binds the listener.
func (s *Server) Start() error {
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("relay: listen %s: %w", s.addr, err)
	}
	return nil
}

// Close stops the server and every stream.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, st := range s.streams {
			st.Close()
			delete(s.streams, k)
		}
	})
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

func (s *Server) checkReader(req *base.Request, name, remote string) (*base.Response, string) {
	if s.lookup == nil {
		return nil, ""
	}
	unauth := &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
		"WWW-Authenticate": auth.GenerateWWWAuthenticate([]auth.ValidateMethod{auth.ValidateMethodDigestMD5}, s.realm, s.nonce),
	}}
	var a headers.Authorization
	if err := a.Unmarshal(req.Header["Authorization"]); err != nil {
		return unauth, "" // the challenge, not a refusal
	}
	user := a.Username
	if a.Method == headers.AuthMethodBasic {
		user = a.BasicUser
	}
	deny := func(r *base.Response) (*base.Response, string) {
		s.mu.Lock()
		s.denied++
		s.mu.Unlock()
		if s.OnAccess != nil {
			s.OnAccess(user, name, remote, false)
		}
		return r, ""
	}
	sec, ok := s.lookup(user, name)
	if !ok {
		return deny(&base.Response{StatusCode: base.StatusForbidden})
	}
	if !validDigest(req, a, user, sec, s.realm, s.nonce) {
		return deny(unauth)
	}
	return nil, user
}

// readerStream authenticates a reader and returns the stream it asked for.
func (s *Server) readerStream(req *base.Request, path string, conn *gortsplib.ServerConn, sess *gortsplib.ServerSession) (*base.Response, *gortsplib.ServerStream, error) {
	name := readerName(path)
	remote := ""
	if conn != nil {
		remote = conn.NetConn().RemoteAddr().String()
	}
	r, user := s.checkReader(req, name, remote)
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
