package camsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Sim runs the simulated cameras.
type Sim struct {
	cfg   Config
	cams  []*Camera
	byID  map[string]*Camera
	logf  func(string, ...any)
	resp  *responder
	https []*http.Server
	vids  []*video

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Options tunes a Sim.
type Options struct {
	// Logf receives diagnostic lines; nil discards them.
	Logf func(string, ...any)
}

// New validates cfg and builds the cameras. No I/O.
func New(cfg Config, opt Options) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Sim{cfg: cfg, byID: map[string]*Camera{}, logf: logf}
	now := time.Now()
	for _, cc := range cfg.Cameras {
		c := newCamera(cc, now, logf)
		s.cams = append(s.cams, c)
		s.byID[cc.ID] = c
	}
	return s, nil
}

// Start binds every camera's HTTP, RTSP and discovery sockets and starts
// serving. On error nothing is left running.
func (s *Sim) Start(ctx context.Context) (err error) {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for _, c := range s.cams {
		ln, err := net.Listen("tcp4", fmt.Sprintf("%s:%d", c.cfg.Address, c.cfg.HTTPPort))
		if err != nil {
			return fmt.Errorf("camsim %s: listen: %w", c.cfg.ID, err)
		}
		c.cfg.HTTPPort = ln.Addr().(*net.TCPAddr).Port
		hs := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		s.https = append(s.https, hs)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logf("camsim %s: http: %v", c.cfg.ID, err)
			}
		}()
		if !c.cfg.NoVideo {
			v, err := startVideo(c, s.logf)
			if err != nil {
				return err
			}
			s.vids = append(s.vids, v)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				v.run(ctx)
			}()
		}
	}
	s.resp = newResponder(s.cfg.Discovery, s.cams, s.logf)
	if err := s.resp.start(ctx); err != nil {
		s.resp = nil
		return err
	}
	return nil
}

// WaitVideo waits until every camera with RTSP publishes both streams.
func (s *Sim) WaitVideo(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, v := range s.vids {
			if !v.ready() {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("camsim: video not ready: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops everything and waits for every goroutine. Idempotent.
func (s *Sim) Close() {
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		if s.resp != nil {
			s.resp.close()
		}
		for _, hs := range s.https {
			_ = hs.Close()
		}
		for _, v := range s.vids {
			v.close()
		}
		s.wg.Wait()
	})
}

// Camera returns a camera by id (nil if unknown).
func (s *Sim) Camera(id string) *Camera { return s.byID[id] }

// Cameras returns all cameras in config order.
func (s *Sim) Cameras() []*Camera { return append([]*Camera(nil), s.cams...) }

func freePort(addr string) (int, error) {
	ln, err := net.Listen("tcp4", addr+":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startVideo starts the camera's RTSP server. With an automatic port, a port
// taken between picking and binding (other tests, other processes) is
// retried with a new one.
func startVideo(c *Camera, logf func(string, ...any)) (*video, error) {
	auto := c.cfg.RTSPPort == 0
	for attempt := 0; ; attempt++ {
		if auto {
			p, err := freePort(c.cfg.Address)
			if err != nil {
				return nil, fmt.Errorf("camsim %s: rtsp port: %w", c.cfg.ID, err)
			}
			c.cfg.RTSPPort = p
		}
		v, err := newVideo(c, logf)
		if err != nil {
			return nil, err
		}
		err = v.start()
		if err == nil {
			return v, nil
		}
		if !auto || attempt >= 4 {
			return nil, err
		}
	}
}
