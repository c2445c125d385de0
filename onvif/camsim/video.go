package camsim

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// video serves a camera's synthetic scene over RTSP: frames rendered in Go
// are encoded by an ffmpeg child (libx264) that publishes to an in-process
// gortsplib server on a secret path; readers authenticate with the
// camera's credentials (RTSP digest) and read /main or /sub.
type video struct {
	cam    *Camera
	srv    *gortsplib.Server
	secret string
	nonce  string
	logf   func(string, ...any)

	mu         sync.Mutex
	streams    map[string]*gortsplib.ServerStream
	publishers map[*gortsplib.ServerSession]string
	frames     uint64
}

func newVideo(cam *Camera, logf func(string, ...any)) (*video, error) {
	nonce, err := auth.GenerateNonce()
	if err != nil {
		return nil, err
	}
	v := &video{cam: cam, secret: randHex(12), nonce: nonce, logf: logf,
		streams: map[string]*gortsplib.ServerStream{}, publishers: map[*gortsplib.ServerSession]string{}}
	v.srv = &gortsplib.Server{
		Handler:     v,
		RTSPAddress: fmt.Sprintf("%s:%d", cam.cfg.Address, cam.cfg.RTSPPort),
		ReadTimeout: 10 * time.Second,
	}
	return v, nil
}

func (v *video) start() error {
	if err := v.srv.Start(); err != nil {
		return fmt.Errorf("camsim %s: rtsp listen %s: %w", v.cam.cfg.ID, v.srv.RTSPAddress, err)
	}
	return nil
}

// run renders and encodes until ctx is done, restarting ffmpeg if it dies.
func (v *video) run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := v.encodeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		v.logf("camsim %s: encoder stopped: %v; restarting", v.cam.cfg.ID, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (v *video) encodeOnce(ctx context.Context) error {
	cfg := v.cam.cfg
	pub := func(path string) string {
		return fmt.Sprintf("rtsp://%s:%d/publish/%s/%s", cfg.Address, cfg.RTSPPort, v.secret, path)
	}
	gop := fmt.Sprint(cfg.FPS * 2)
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-bf", "0", "-pix_fmt", "yuv420p"}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", fmt.Sprintf("%dx%d", cfg.Width, cfg.Height), "-r", fmt.Sprint(cfg.FPS), "-i", "pipe:0",
		"-map", "0:v"}
	args = append(args, x264...)
	args = append(args, "-b:v", "4M", "-f", "rtsp", "-rtsp_transport", "tcp", pub(profMain), "-map", "0:v", "-vf", "scale=640:360")
	args = append(args, x264...)
	args = append(args, "-b:v", "512k", "-f", "rtsp", "-rtsp_transport", "tcp", pub(profSub))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	f := NewFrame(cfg.Width, cfg.Height)
	tick := time.NewTicker(time.Second / time.Duration(cfg.FPS))
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			in.Close()
			cancel()
			<-done
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("ffmpeg exited: %v: %s", err, strings.TrimSpace(stderr.String()))
		case now := <-tick.C:
			pos, _ := v.cam.Position()
			Render(f, cfg.Scene, pos, now.Sub(start))
			if _, err := in.Write(f.Data); err != nil {
				in.Close()
				return fmt.Errorf("write frame: %v (%s)", err, strings.TrimSpace(stderr.String()))
			}
			v.mu.Lock()
			v.frames++
			v.mu.Unlock()
		}
	}
}

func (v *video) close() {
	v.srv.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, s := range v.streams {
		s.Close()
		delete(v.streams, k)
	}
}

// Ready reports whether both streams are being published.
func (v *video) ready() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.streams[profMain] != nil && v.streams[profSub] != nil
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, _ = l.w.Write(q)
	return len(p), nil
}

// --- gortsplib handler -------------------------------------------------------

func (v *video) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if path, ok := v.publishers[ctx.Session]; ok {
		delete(v.publishers, ctx.Session)
		if s := v.streams[path]; s != nil {
			s.Close()
			delete(v.streams, path)
		}
	}
}

func (v *video) readerPath(p string) string { return strings.Trim(p, "/") }

func (v *video) checkReader(req *base.Request) *base.Response {
	if v.cam.cfg.Auth == AuthNone {
		return nil
	}
	err := auth.Validate(req, v.cam.cfg.Username, v.cam.cfg.Password,
		[]auth.ValidateMethod{auth.ValidateMethodDigestMD5, auth.ValidateMethodSHA256}, realm, v.nonce)
	if err == nil {
		return nil
	}
	return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
		"WWW-Authenticate": auth.GenerateWWWAuthenticate([]auth.ValidateMethod{auth.ValidateMethodDigestMD5}, realm, v.nonce),
	}}
}

func (v *video) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if r := v.checkReader(ctx.Request); r != nil {
		return r, nil, nil
	}
	v.mu.Lock()
	s := v.streams[v.readerPath(ctx.Path)]
	v.mu.Unlock()
	if s == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s, nil
}

func (v *video) publishPath(p string) (string, bool) {
	p = strings.Trim(p, "/")
	pre := "publish/" + v.secret + "/"
	if !strings.HasPrefix(p, pre) {
		return "", false
	}
	name := strings.TrimPrefix(p, pre)
	return name, name == profMain || name == profSub
}

func (v *video) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	name, ok := v.publishPath(ctx.Path)
	if !ok {
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	if ip, _, err := net.SplitHostPort(ctx.Conn.NetConn().RemoteAddr().String()); err != nil || !net.ParseIP(ip).IsLoopback() {
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if old := v.streams[name]; old != nil {
		old.Close()
		for s, p := range v.publishers {
			if p == name {
				s.Close()
				delete(v.publishers, s)
			}
		}
	}
	v.streams[name] = gortsplib.NewServerStream(v.srv, ctx.Description)
	v.publishers[ctx.Session] = name
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (v *video) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if _, ok := v.publishPath(ctx.Path); ok && ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if r := v.checkReader(ctx.Request); r != nil {
		return r, nil, nil
	}
	path := v.readerPath(ctx.Path)
	// SETUP paths carry a track suffix (/main/trackID=0).
	if i := strings.IndexByte(path, '/'); i >= 0 {
		path = path[:i]
	}
	v.mu.Lock()
	s := v.streams[path]
	v.mu.Unlock()
	if s == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s, nil
}

func (v *video) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (v *video) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	v.mu.Lock()
	name := v.publishers[ctx.Session]
	s := v.streams[name]
	v.mu.Unlock()
	if s == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = s.WritePacketRTP(medi, pkt)
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// serveSnapshot renders the current view as JPEG.
func (c *Camera) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	cfg := c.cfg
	wd, ht := cfg.Width, cfg.Height
	if strings.Contains(r.URL.Path, profSub) {
		wd, ht = 640, 360
	}
	f := NewFrame(wd, ht)
	pos, _ := c.Position()
	Render(f, cfg.Scene, pos, time.Since(c.start))
	var b bytes.Buffer
	if err := jpeg.Encode(&b, f.YCbCr(), &jpeg.Options{Quality: 85}); err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(b.Bytes())
}
