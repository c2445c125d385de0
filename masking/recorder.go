package masking

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"velo/internal/camid"
)

// SegmentTimeFormat is the UTC start time in segment names:
// CAMERA_20060102T150405Z.mkv, so names sort by time.
const SegmentTimeFormat = "20060102T150405Z"

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	Camera string
	// Source is the relay's read URL of the camera's masked stream
	// (without credentials) and the recorder's own relay credentials.
	Source             string
	Username, Password string
	Dir                string
	// SegmentLength of each MKV file. Default 5 min.
	SegmentLength time.Duration
	Logf          func(string, ...any)
}

// Recorder writes the masked stream, as served by the relay, into MKV
// segments named by camera and UTC start time, without re-encoding (an
// ffmpeg child, restarted with backoff). Reading from the relay means a
// recording can only contain what authorised readers see: masked video.
type Recorder struct {
	cfg RecorderConfig

	mu   sync.Mutex
	done []string // completed segments, oldest first
}

// NewRecorder checks cfg (no I/O).
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Camera == "" || cfg.Source == "" || cfg.Dir == "" {
		return nil, fmt.Errorf("masking: recorder: camera, source and dir are required")
	}
	if err := camid.Check(cfg.Camera); err != nil {
		return nil, fmt.Errorf("masking: recorder: %w", err)
	}
	if cfg.SegmentLength <= 0 {
		cfg.SegmentLength = 5 * time.Minute
	}
	if cfg.SegmentLength < time.Second {
		return nil, fmt.Errorf("masking: recorder %q: segment length %v below 1s", cfg.Camera, cfg.SegmentLength)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Recorder{cfg: cfg}, nil
}

// Completed returns the segments finished so far.
func (r *Recorder) Completed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.done...)
}

// Run records until ctx is done.
func (r *Recorder) Run(ctx context.Context) error {
	if err := os.MkdirAll(r.cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("masking: recorder %q: %w", r.cfg.Camera, err)
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := r.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		r.cfg.Logf("recorder stopped, restarting: %v", err)
		t := time.NewTimer(backoff/2 + time.Duration(rand.Int64N(int64(backoff)/2+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

func (r *Recorder) once(ctx context.Context) error {
	input := []string{"-rtsp_transport", "tcp", "-i", r.cfg.Source}
	if r.cfg.Username != "" {
		// The credentials go in a 0600 ffconcat file, not on ffmpeg's
		// command line (which every local user can read in /proc).
		src := strings.Replace(r.cfg.Source, "rtsp://", "rtsp://"+urlUserinfo(r.cfg.Username, r.cfg.Password)+"@", 1)
		in := filepath.Join(r.cfg.Dir, "."+r.cfg.Camera+".input.ffconcat")
		_ = os.Remove(in)
		if err := os.WriteFile(in, []byte("ffconcat version 1.0\nfile '"+src+"'\noption rtsp_transport tcp\n"), 0o600); err != nil {
			return fmt.Errorf("recorder input: %w", err)
		}
		defer os.Remove(in)
		input = []string{"-f", "concat", "-safe", "0", "-protocol_whitelist", "file,rtsp,rtp,tcp,udp", "-i", in}
	}
	list := filepath.Join(r.cfg.Dir, "."+r.cfg.Camera+".segments.csv")
	_ = os.Remove(list)
	pattern := segmentPattern(r.cfg.Dir, r.cfg.Camera)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, input...)
	cmd := exec.CommandContext(ctx, "ffmpeg", append(args, "-map", "0:v", "-c", "copy",
		"-f", "segment", "-segment_time", fmt.Sprint(r.cfg.SegmentLength.Seconds()), "-segment_format", "matroska",
		"-reset_timestamps", "1", "-strftime", "1", "-segment_list", list, "-segment_list_type", "csv", pattern)...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // let ffmpeg close the file
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 2048}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-waitErr:
			r.readList(list)
			msg := strings.ReplaceAll(stderr.String(), r.cfg.Password, "REDACTED")
			if r.cfg.Password == "" {
				msg = stderr.String()
			}
			return fmt.Errorf("ffmpeg: %v: %s", err, strings.TrimSpace(msg))
		case <-tick.C:
			r.readList(list)
		}
	}
}

func urlUserinfo(u, p string) string {
	esc := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	return esc(u) + ":" + esc(p)
}

// readList records the segments ffmpeg reports as complete.
func (r *Recorder) readList(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), ",")
		if name != "" {
			names = append(names, filepath.Join(r.cfg.Dir, filepath.Base(name)))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range r.done {
		seen[d] = true
	}
	for _, n := range names {
		if !seen[n] {
			r.done = append(r.done, n)
		}
	}
}

type limited struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		q := p[:min(len(p), l.n)]
		l.n -= len(q)
		_, _ = l.w.Write(q)
	}
	return len(p), nil
}

// SegmentStart parses camera and UTC start time from a segment file name
// (the camera ID as it is: it may hold '_', the time never does).
func SegmentStart(name string) (camera string, start time.Time, err error) {
	base := strings.TrimSuffix(filepath.Base(name), ".mkv")
	i := strings.LastIndexByte(base, '_')
	if i < 0 {
		return "", time.Time{}, fmt.Errorf("masking: %q is not a segment name", name)
	}
	t, err := time.Parse(SegmentTimeFormat, base[i+1:])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("masking: %q: %w", name, err)
	}
	return base[:i], t, nil
}

// segmentPattern is ffmpeg's strftime pattern of a camera's segment files.
// The camera ID goes in as it is (NewRecorder checked it against the one
// ID rule), so SegmentStart gives it back exactly and no two cameras share
// a name.
func segmentPattern(dir, camera string) string {
	return filepath.Join(dir, camera+"_%Y%m%dT%H%M%SZ.mkv")
}
