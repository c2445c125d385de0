// Package console is the installer console: an HTTPS web app served by
// velo run (the process that owns the cameras and the PTZ lock) where an
// installer draws each view's masks on a still of the view, checks them
// as Velo's own masker renders them, opens a time-limited, audited
// commissioning session to see the unmasked picture, and saves the result
// as a proposal that takes effect only once an admin approves it
// (ER-4.7). Approved views are validated with the rules of velo config
// check, written to the managed views file the site config includes, and
// applied by a reload.
//
// The console declares what it needs from the agent (Gateway) and links
// no OpenCV: pictures are rendered by the agent through masking. Its
// assets are embedded (go:embed); no CDN, no external font.
//
// Lifecycle: New checks the options (no I/O); Run listens, serves until
// its context ends, then shuts down and returns. A Server is safe for
// concurrent use.
package console

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/masking/maskspec"
)

//go:embed assets
var assets embed.FS

// CameraState is what the cameras page shows of a camera.
type CameraState struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"` // streaming, blank, video-lost, offline, scheduled-off, starting
	Online       bool      `json:"online"`
	Locked       bool      `json:"locked"` // at an approved view (the PTZ lock confirmed it)
	Blank        bool      `json:"blank"`
	ViewVerified bool      `json:"view_verified"`
	Preset       string    `json:"preset,omitempty"`
	FPSIn        float64   `json:"fps_in"`
	FPSOut       float64   `json:"fps_out"`
	LastEvent    string    `json:"last_event,omitempty"`
	LastEventAt  time.Time `json:"last_event_at,omitzero"`
	Error        string    `json:"error,omitempty"`
}

// Gateway is the agent as the console uses it. Pictures come from the
// camera's running frame path: the masked snapshot is a copy of a frame
// the stream encoded; the preview is a frame masked by Velo's masker with
// the given masks; the unmasked still is for commissioning only.
type Gateway interface {
	Config() *config.Config
	ConsoleStates() []CameraState
	// Emit is the agent's event funnel (log, audit log, MQTT).
	Emit(event.Event)
	// LoginRefused reports a refused login: the first of a burst from its
	// source at once, the rest in one summary (agent/attempts).
	LoginRefused(user, remote, why string)
	// Audit is Emit for an event that must be on record before what it
	// records happens: an error means the audit log did not take it.
	Audit(event.Event) error
	MaskedSnapshot(ctx context.Context, camera string) ([]byte, error)
	// Preview draws masks on a picture of the camera: without a watermark
	// on a frame the stream encoded (ErrNotAtView unless it is streaming
	// at the view); with one on the unmasked still (commissioning).
	Preview(ctx context.Context, camera, preset string, masks []maskspec.Mask, watermark []string) ([]byte, error)
	UnmaskedStill(ctx context.Context, camera string, watermark []string) ([]byte, error)
	// Reload applies the site config again (the managed views file was
	// just written); an error means nothing changed.
	Reload() error
	// CaptureReference records the view-verification reference of a view
	// about to be approved, with its new masks excluded, and returns its
	// SHA-256 and how to put the old one back (the reload was refused).
	CaptureReference(ctx context.Context, camera, preset string, masks []maskspec.Mask, operator string) (string, func(), error)
	// PTZ in commissioning, through the camera's PTZ lock (never a direct
	// ONVIF call from here). PTZMove holds the lock (no snap-back, output
	// blank) and moves; PTZSavePreset stores the position as a new camera
	// preset (approving nothing) and returns its token and position, only
	// while held; PTZRelease ends the hold (the camera snaps back to its
	// approved view).
	// until: the hold ends by itself then (the commissioning's end), should
	// its release be lost.
	PTZMove(ctx context.Context, camera string, m PTZMove, until time.Time) (event.Position, error)
	PTZSavePreset(ctx context.Context, camera, name string) (string, event.Position, error)
	PTZRelease(ctx context.Context, camera, why string) error
	// CapturePresetReference records the view-verification reference of
	// a preset just added by an approval and applied by its reload: the
	// camera is moved to it, the reference taken as CaptureReference does,
	// and the camera restarted onto it; it returns the SHA-256.
	CapturePresetReference(ctx context.Context, camera, preset string, masks []maskspec.Mask, operator string) (string, error)
}

// PTZMove is a commissioning move: relative (a step added to the position
// read now) or absolute, in the generic spaces (pan and tilt −1..1, zoom
// 0..1).
type PTZMove struct {
	Relative bool    `json:"relative"`
	Pan      float64 `json:"pan"`
	Tilt     float64 `json:"tilt"`
	Zoom     float64 `json:"zoom"`
}

// ErrNotAtView: the camera is not streaming at the approved view asked
// for, so no picture of it is shown.
var ErrNotAtView = errors.New("is not streaming at its approved view")

// Options configure a Server.
type Options struct {
	Config   config.ConsoleConfig
	StateDir string // the self-signed certificate and the proposals live in <StateDir>/console
	Gateway  Gateway
	Log      zerolog.Logger
	// Now is the clock of sessions and commissioning (default time.Now).
	Now func() time.Time
}

// Server is the console.
type Server struct {
	opts     Options
	dir      string
	sessions *sessions
	throttle *throttle
	props    *proposals
	applyMu  sync.Mutex // one approval at a time
	ptzMu    sync.Mutex
	ptz      map[string]string // camera → the session whose commissioning holds its PTZ lock
	ln       net.Listener
	srv      *http.Server
}

// New checks the options (no I/O).
func New(o Options) (*Server, error) {
	if o.Gateway == nil {
		return nil, errors.New("console: a gateway is required")
	}
	if o.Config.Listen == "" {
		return nil, errors.New("console: console.listen is not set")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dir := filepath.Join(o.StateDir, "console")
	s := &Server{opts: o, dir: dir, sessions: newSessions(time.Duration(o.Config.SessionTTL), o.Now),
		throttle: newThrottle(o.Now), props: &proposals{path: filepath.Join(dir, "proposals.json")}, ptz: map[string]string{}}
	return s, nil
}

// Listen loads or makes the certificate and binds the address: an error
// here stops velo run (a console configured but not served is a fault).
func (s *Server) Listen() error {
	cert, fp, err := s.certificate()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.opts.Config.Listen)
	if err != nil {
		return fmt.Errorf("console: listen %s: %w", s.opts.Config.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:  log.New(io.Discard, "", 0)}
	s.opts.Log.Info().Str("url", s.URL()).Str("cert_sha256", fp).Msg("console listening")
	return nil
}

// URL is where the console is served (after Listen).
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() + "/" }

// Serve serves until ctx ends (after Listen), then shuts down.
func (s *Server) Serve(ctx context.Context) error {
	// Requests (the state streams) end with ctx, so Shutdown does not
	// wait on them.
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	done := make(chan error, 1)
	go func() { done <- s.srv.ServeTLS(s.ln, "", "") }()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = s.srv.Shutdown(sctx)
			<-done
			s.closeAll("agent stopping")
			return nil
		case err := <-done:
			s.closeAll("console stopped")
			return fmt.Errorf("console: %w", err)
		case <-sweep.C:
			s.sweep()
		}
	}
}
