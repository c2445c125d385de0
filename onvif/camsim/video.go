package camsim

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// video serves a camera's synthetic scene over RTSP: frames rendered in Go
// are encoded by an ffmpeg child (libx264, or libx265 for a camera whose
// encoding is H265) that publishes to the camera's
// own RTSP server on a secret path; readers authenticate with the camera's
// credentials (RTSP digest) and read /main or /sub.
type video struct {
	cam  *Camera
	rtsp *rtspServer
	logf func(string, ...any)

	mu     sync.Mutex
	frames uint64
}

func newVideo(cam *Camera, logf func(string, ...any)) (*video, error) {
	user, pass := cam.cfg.Username, cam.cfg.Password
	if cam.cfg.Auth == AuthNone {
		user, pass = "", ""
	}
	srv, err := newRTSPServer(fmt.Sprintf("%s:%d", cam.cfg.Address, cam.cfg.RTSPPort), user, pass)
	if err != nil {
		return nil, fmt.Errorf("camsim %s: %w", cam.cfg.ID, err)
	}
	return &video{cam: cam, rtsp: srv, logf: logf}, nil
}

func (v *video) start() error {
	if err := v.rtsp.start(); err != nil {
		return fmt.Errorf("camsim %s: %w", v.cam.cfg.ID, err)
	}
	return nil
}

// run renders and encodes until ctx is done, restarting ffmpeg if it dies.
func (v *video) run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	encode := v.encodeOnce
	if v.cam.cfg.Source != "" {
		encode = v.encodeFile
	}
	for ctx.Err() == nil {
		err := encode(ctx)
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
	pub := v.rtsp.publishURL
	gop := fmt.Sprint(v.cam.gop())
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-bf", "0", "-pix_fmt", "yuv420p"}
	if cfg.codec() == "H265" {
		x264 = []string{"-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-bf", "0", "-pix_fmt", "yuv420p",
			"-x265-params", "log-level=error"}
	}
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
	var scene Renderer
	tick := time.NewTicker(time.Second / time.Duration(cfg.FPS))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			in.Close()
			cancel()
			<-done
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("ffmpeg exited: %v: %s", err, v.ffmpegOutput(&stderr))
		case now := <-tick.C:
			pos, _ := v.cam.Position()
			scene.Render(f, cfg.Scene, pos, v.cam.SceneState(now))
			if _, err := in.Write(f.Data); err != nil {
				in.Close()
				return fmt.Errorf("write frame: %v (%s)", err, v.ffmpegOutput(&stderr))
			}
			v.mu.Lock()
			v.frames++
			v.mu.Unlock()
		}
	}
}

// ffmpegOutput is ffmpeg's stderr without the publish secret (ffmpeg
// names the URL it failed on).
func (v *video) ffmpegOutput(stderr *bytes.Buffer) string {
	return strings.ReplaceAll(strings.TrimSpace(stderr.String()), v.rtsp.secret, "<secret>")
}

func (v *video) close() { v.rtsp.close() }

// ready reports whether both streams are being published.
func (v *video) ready() bool { return v.rtsp.publishing(profMain) && v.rtsp.publishing(profSub) }

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

// serveSnapshot renders the current view as JPEG.
func (c *Camera) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	cfg := c.cfg
	wd, ht := cfg.Width, cfg.Height
	if strings.Contains(r.URL.Path, profSub) {
		wd, ht = 640, 360
	}
	pos, _ := c.Position()
	f := &Frame{W: wd, H: ht, Data: RenderI420(cfg.Scene, wd, ht, pos, c.SceneState(time.Now()))}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, f.YCbCr(), &jpeg.Options{Quality: 85}); err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(b.Bytes())
}

// gop is the keyframe interval in frames (default 2 s).
func (c *Camera) gop() int {
	if c.cfg.GOPFrames > 0 {
		return c.cfg.GOPFrames
	}
	return c.cfg.FPS * 2
}
