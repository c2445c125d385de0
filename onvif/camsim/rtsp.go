package camsim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
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

// rtspServer is a camera's RTSP server. The camera's encoder (a local
// ffmpeg) publishes each profile on a secret path from loopback; readers
// read /main and /sub after RTSP digest authentication (MD5 challenge,
// SHA-256 accepted) with the camera's username and password. An empty
// username means no authentication (auth: none).
//
// Lifecycle: newRTSPServer (no I/O), start (binds), close (idempotent).
type rtspServer struct {
	srv    *gortsplib.Server
	addr   string
	secret string // publish path element: never log it
	nonce  string
	user   string
	pass   string

	mu         sync.Mutex
	streams    map[string]*gortsplib.ServerStream // by profile
	publishers map[*gortsplib.ServerSession]string
	closeOnce  sync.Once
}

func newRTSPServer(addr, user, pass string) (*rtspServer, error) {
	nonce, err := auth.GenerateNonce()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &rtspServer{addr: addr, secret: hex.EncodeToString(b), nonce: nonce, user: user, pass: pass,
		streams: map[string]*gortsplib.ServerStream{}, publishers: map[*gortsplib.ServerSession]string{}}
	// A reader that has just connected takes a moment to drain its socket:
	// the queue must hold a textured 1080p keyframe (hundreds of RTP
	// packets), or the reader's first frames are decoded with holes.
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: addr, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		WriteQueueSize: 4096}
	return s, nil
}

func (s *rtspServer) start() error {
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("rtsp listen %s: %w", s.addr, err)
	}
	return nil
}

func (s *rtspServer) close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for name, st := range s.streams {
			st.Close()
			delete(s.streams, name)
		}
	})
}

// publishURL is where the encoder publishes profile. It contains the
// secret: never log it.
func (s *rtspServer) publishURL(profile string) string {
	return fmt.Sprintf("rtsp://%s/publish/%s/%s", s.addr, s.secret, profile)
}

// publishing reports whether profile is being published.
func (s *rtspServer) publishing(profile string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[profile] != nil
}

// publishName returns the profile of a publish path.
func (s *rtspServer) publishName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.Trim(path, "/"), "publish/"+s.secret+"/")
	return rest, ok && rest != "" && !strings.Contains(rest, "/")
}

// authorize returns nil when req may read stream name, else the reply:
// 401 with a challenge (no or wrong credentials), 403 (another user, or
// a stream the camera does not have).
func (s *rtspServer) authorize(req *base.Request, name string) *base.Response {
	if s.user == "" {
		return nil
	}
	unauth := &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
		"WWW-Authenticate": auth.GenerateWWWAuthenticate([]auth.ValidateMethod{auth.ValidateMethodDigestMD5}, realm, s.nonce),
	}}
	var a headers.Authorization
	if err := a.Unmarshal(req.Header["Authorization"]); err != nil {
		return unauth
	}
	user := a.Username
	if a.Method == headers.AuthMethodBasic {
		user = a.BasicUser
	}
	if user != s.user || (name != profMain && name != profSub) {
		return &base.Response{StatusCode: base.StatusForbidden}
	}
	digest := []auth.ValidateMethod{auth.ValidateMethodDigestMD5, auth.ValidateMethodSHA256}
	if err := auth.Validate(req, s.user, s.pass, digest, realm, s.nonce); err != nil {
		return unauth
	}
	return nil
}

// readerStream authorizes a reader and returns the stream it asked for.
func (s *rtspServer) readerStream(req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	name := strings.Trim(path, "/")
	if i := strings.IndexByte(name, '/'); i >= 0 { // SETUP: /main/trackID=0
		name = name[:i]
	}
	if r := s.authorize(req, name); r != nil {
		return r, nil, nil
	}
	s.mu.Lock()
	st := s.streams[name]
	s.mu.Unlock()
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *rtspServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return s.readerStream(ctx.Request, ctx.Path)
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: only a loopback
// client that knows the secret may publish; a new publisher replaces the
// old one.
func (s *rtspServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	name, ok := s.publishName(ctx.Path)
	ip, _, err := net.SplitHostPort(ctx.Conn.NetConn().RemoteAddr().String())
	if !ok || err != nil || !net.ParseIP(ip).IsLoopback() {
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

// OnSetup implements gortsplib.ServerHandlerOnSetup: a publisher's SETUP
// (on its announced path) is accepted, a reader's is authorized.
func (s *rtspServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		if _, ok := s.publishName(ctx.Path); ok {
			return &base.Response{StatusCode: base.StatusOK}, nil, nil
		}
		return &base.Response{StatusCode: base.StatusForbidden}, nil, nil
	}
	return s.readerStream(ctx.Request, ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *rtspServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord: the publisher's
// packets go to every reader of its stream.
func (s *rtspServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
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

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose: a
// publisher that leaves takes its stream with it.
func (s *rtspServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.publishers[ctx.Session]
	if !ok {
		return
	}
	delete(s.publishers, ctx.Session)
	if st := s.streams[name]; st != nil {
		st.Close()
		delete(s.streams, name)
	}
}
