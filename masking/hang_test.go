package masking_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// stallServer is an RTSP server on loopback that hangs its clients. With
// mute it answers OPTIONS, DESCRIBE (an H.264 track), SETUP, PLAY and the
// keep-alives, then never sends a packet: GStreamer's open waits forever
// for its first frame. Without mute it accepts and never answers at all.
type stallServer struct {
	ln    net.Listener
	mute  bool
	mu    sync.Mutex
	conns []net.Conn
}

func newStallServer(t *testing.T, host string, mute bool) *stallServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stallServer{ln: ln, mute: mute}
	t.Cleanup(s.hangUp)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			if mute {
				go s.answer(c)
			}
		}
	}()
	return s
}

func (s *stallServer) url() string { return "rtsp://" + s.ln.Addr().String() + "/stall" }

// hangUp stops the server: the hung clients see their connection end and
// cannot connect again.
func (s *stallServer) hangUp() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

const stallSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=stall\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"

// answer replies 200 to every request, RTP over the RTSP connection.
func (s *stallServer) answer(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || len(strings.Fields(line)) == 0 {
			return
		}
		method, cseq := strings.Fields(line)[0], ""
		for {
			h, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if h = strings.TrimSpace(h); h == "" {
				break
			}
			if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "cseq") {
				cseq = strings.TrimSpace(v)
			}
		}
		resp := "RTSP/1.0 200 OK\r\nCSeq: " + cseq + "\r\n"
		switch method {
		case "OPTIONS":
			resp += "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"
		case "DESCRIBE":
			resp += fmt.Sprintf("Content-Type: application/sdp\r\nContent-Base: %s/\r\nContent-Length: %d\r\n\r\n%s", s.url(), len(stallSDP), stallSDP)
		case "SETUP":
			resp += "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242;timeout=60\r\n\r\n"
		default:
			resp += "Session: 4242\r\n\r\n"
		}
		if _, err := c.Write([]byte(resp)); err != nil {
			return
		}
	}
}

// An open that hangs is abandoned at its deadline. Through OpenCV (the
// FFmpeg backend) the call itself hangs: the camera may hold two such
// opens, the third is refused at once, and the abandoned captures are
// closed when their calls return (when the server goes away); a call that
// never returns is why Full fails the agent's watchdog. Through the
// appsink (GStreamer backend) the wait for the first frame is the
// appsink's own timed pull: the open returns at its deadline, the pipeline
// is torn down at once, and nothing is left hanging (no stuck call, no
// pipeline, no goroutine).
func TestCaptureOpenHasADeadline(t *testing.T) {
	masking.ProbeElements() // the process's one-off codec probe is not the open under test
	for _, tc := range []struct {
		name    string
		mute    bool
		backend masking.Backend
		returns bool // the abandoned call returns once the server is gone
	}{
		{"no reply to DESCRIBE/gstreamer", false, masking.BackendGStreamer, true},
		{"no RTP after PLAY/gstreamer", true, masking.BackendGStreamer, true},
		{"no RTP after PLAY/ffmpeg", true, masking.BackendFFmpeg, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.backend == masking.BackendGStreamer && !masking.GstOpenCV() {
				openReturnsAtItsDeadline(t, tc.mute)
				return
			}
			srv := newStallServer(t, "127.0.97.41", tc.mute)
			stuck := masking.NewStuck(2, 8)
			const deadline = 2 * time.Second
			open, err := masking.CaptureConfig{Camera: "stall", URL: srv.url(), Backend: tc.backend, StallTimeout: time.Minute,
				OpenTimeout: deadline, Stuck: stuck}.Opener()
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 2; i++ {
				t0 := time.Now()
				_, err := open(context.Background())
				took := time.Since(t0)
				t.Logf("open %d: %v after %v", i, err, took.Round(time.Millisecond))
				if !masking.IsHung(err) {
					t.Fatalf("open %d: %v, want a hung open abandoned", i, err)
				}
				if took > deadline+time.Second {
					t.Fatalf("open %d took %v, deadline %v", i, took, deadline)
				}
				if n := stuck.Count("stall"); n != i {
					t.Fatalf("after %d hung opens: %d stuck", i, n)
				}
			}
			t0 := time.Now()
			if _, err := open(context.Background()); !errors.Is(err, masking.ErrTooManyStuck) || time.Since(t0) > 100*time.Millisecond {
				t.Fatalf("third open: %v after %v, want ErrTooManyStuck at once", err, time.Since(t0))
			}
			if err := stuck.Full(); err == nil || !strings.Contains(err.Error(), `"stall"`) {
				t.Fatalf("Full: %v, want the camera named", err)
			}
			srv.hangUp()
			if !tc.returns {
				return
			}
			testkit.WaitFor(t, time.Minute, "abandoned opens closed", func() bool { return stuck.Total() == 0 })
			if err := stuck.Full(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// openReturnsAtItsDeadline: through the appsink, hung opens in a row
// (one more than FFmpeg's bound lets through) each return at their deadline as hung (so auto does not fall back to
// FFmpeg), each is torn down at once, and none stays stuck or running.
func openReturnsAtItsDeadline(t *testing.T, mute bool) {
	srv := newStallServer(t, "127.0.97.41", mute)
	stuck := masking.NewStuck(2, 8)
	const deadline = 2 * time.Second
	open, err := masking.CaptureConfig{Camera: "stall", URL: srv.url(), Backend: masking.BackendGStreamer, StallTimeout: time.Minute,
		OpenTimeout: deadline, Stuck: stuck}.Opener()
	if err != nil {
		t.Fatal(err)
	}
	base, baseFD, pipes := runtime.NumGoroutine(), testkit.OpenFDs(), masking.LivePipelines()
	for i := 1; i <= 3; i++ { // FFmpeg's bound (2) refuses the third
		t0 := time.Now()
		_, err := open(context.Background())
		took := time.Since(t0)
		t.Logf("open %d: %v after %v", i, err, took.Round(time.Millisecond))
		if !masking.IsHung(err) || took > deadline+time.Second {
			t.Fatalf("open %d: %v after %v, want a hung open given up at its deadline %v", i, err, took, deadline)
		}
		if n := stuck.Total(); n != 0 {
			t.Fatalf("open %d: %d calls stuck, want none (the appsink's pull returned)", i, n)
		}
		if n := masking.LivePipelines(); n != pipes {
			t.Fatalf("open %d: %d pipelines alive, want %d", i, n, pipes)
		}
	}
	if err := stuck.Full(); err != nil {
		t.Fatal(err)
	}
	srv.hangUp() // its side of the connections
	if g, fds := testkit.Settle(base, baseFD, 2); g > base+2 || fds > baseFD+2 {
		t.Fatalf("goroutines %d → %d, fds %d → %d over hung opens", base, g, baseFD, fds)
	}
}

// A stream that freezes mid-stream (the connection stays open, nothing
// comes): the read is abandoned at its deadline, and the capture closed
// once the frozen read returns (FFmpeg); through the appsink the read is
// the appsink's timed pull, which returns at its deadline: the capture
// closes at once and nothing stays stuck.
func TestCaptureReadHasADeadline(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "frz", Address: "127.0.97.42", Username: "u", Password: "p", Scene: "badge", FPS: 10, Width: 320, Height: 180})
	cc := sim.Camera("frz").Config()
	px := testkit.NewCutProxy(t, fmt.Sprintf("%s:%d", cc.Address, cc.RTSPPort))
	for _, be := range []masking.Backend{masking.BackendGStreamer, masking.BackendFFmpeg} {
		t.Run(string(be), func(t *testing.T) {
			stuck := masking.NewStuck(2, 8)
			const deadline = 2 * time.Second
			open, _ := masking.CaptureConfig{Camera: "frz", URL: "rtsp://" + px.Ln.Addr().String() + "/main", Username: "u", Password: "p",
				Backend: be, ReadTimeout: deadline, Stuck: stuck}.Opener()
			src, err := open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			f := &masking.Frame{}
			for range 5 {
				if err := src.Read(f); err != nil {
					t.Fatal(err)
				}
			}
			px.Freeze()
			defer px.Thaw()
			t0 := time.Now()
			for err == nil {
				err = src.Read(f) // frames already buffered come first
			}
			took := time.Since(t0)
			t.Logf("read: %v after %v", err, took.Round(time.Millisecond))
			if !masking.IsHung(err) || took > deadline+2*time.Second {
				t.Fatalf("read: %v after %v, want a hung read abandoned within %v", err, took, deadline)
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			want := 1
			if be == masking.BackendGStreamer && !masking.GstOpenCV() {
				want = 0
			}
			if n := stuck.Count("frz"); n != want {
				t.Fatalf("%d stuck, want %d", n, want)
			}
			px.Cut() // the frozen connection ends: the read returns
			px.Thaw()
			testkit.WaitFor(t, time.Minute, "abandoned read closed", func() bool { return stuck.Total() == 0 })
		})
	}
}

// videoLog records a pipeline's video lost / restored calls.
type videoLog struct {
	mu     sync.Mutex
	events []string
}

func (v *videoLog) on(lost bool, detail string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	kind := "restored"
	if lost {
		kind = "lost"
	}
	v.events = append(v.events, kind+": "+detail)
}

func (v *videoLog) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.events)
}

func (v *videoLog) last() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.events[len(v.events)-1]
}

// A camera that freezes mid-stream, again and again: each time the video
// is reported lost within LostAfter (and nothing is encoded meanwhile),
// the frame path stays alive (lost and retrying), and the video is
// reported restored once the stream comes back. Hung calls and goroutines
// do not pile up over the cycles.
func TestPipelineVideoLostAndRestored(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "lost", Address: "127.0.97.43", Username: "u", Password: "p", Scene: "badge", FPS: 10, Width: 320, Height: 180})
	cc := sim.Camera("lost").Config()
	px := testkit.NewCutProxy(t, fmt.Sprintf("%s:%d", cc.Address, cc.RTSPPort))
	stuck := masking.NewStuck(2, 8)
	open, _ := masking.CaptureConfig{Camera: "lost", URL: "rtsp://" + px.Ln.Addr().String() + "/main", Username: "u", Password: "p",
		Backend: masking.BackendGStreamer, StallTimeout: 3 * time.Second, OpenTimeout: 2 * time.Second, ReadTimeout: time.Second, Stuck: stuck}.Opener()
	m := fullMasker(t, "lost")
	var video videoLog
	const lostAfter = 3 * time.Second
	p, _ := masking.NewPipeline(masking.PipelineConfig{Camera: "lost", Masker: m, Open: open, Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: "lost", FPS: 10}),
		MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second, LostAfter: lostAfter, OnVideo: video.on, CallBound: 4 * time.Second, Logf: t.Logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitEncoded := func(n uint64) {
		testkit.WaitFor(t, 30*time.Second, "frames encoded", func() bool { return p.Stats().Encoded >= n })
	}
	waitEncoded(10)
	base, baseFD, basePipes := runtime.NumGoroutine(), testkit.OpenFDs(), masking.LivePipelines()
	var detect []time.Duration
	for cycle := 1; cycle <= 4; cycle++ {
		px.Freeze()
		t0 := time.Now()
		testkit.WaitFor(t, lostAfter+5*time.Second, "video lost", func() bool { return video.count() == 2*cycle-1 })
		detect = append(detect, time.Since(t0))
		t.Logf("cycle %d: %s after %v", cycle, video.last(), time.Since(t0).Round(time.Millisecond))
		if !strings.HasPrefix(video.last(), "lost: no frame captured for") {
			t.Fatalf("cycle %d: %s", cycle, video.last())
		}
		enc := p.Stats().Encoded
		for range 10 { // lost and retrying: alive, and nothing goes out
			if !p.Alive() {
				t.Fatalf("cycle %d: frame path not alive while retrying", cycle)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := p.Stats().Encoded; got > enc+2 { // at most the frames already in the channels
			t.Fatalf("cycle %d: %d frames encoded while the video was lost", cycle, got-enc)
		}
		px.Cut() // the camera's server recovers: frozen connections end
		px.Thaw()
		testkit.WaitFor(t, 30*time.Second, "video restored", func() bool { return video.count() == 2*cycle })
		t.Logf("cycle %d: %s; %d hung calls", cycle, video.last(), stuck.Total())
		waitEncoded(p.Stats().Encoded + 10)
	}
	testkit.WaitFor(t, time.Minute, "hung calls returned", func() bool { return stuck.Total() == 0 })
	g, fds := testkit.Settle(base, baseFD, 10)
	t.Logf("goroutines %d → %d, fds %d → %d; time to video_lost: %v (LostAfter %v)", base, g, baseFD, fds, detect, lostAfter)
	if g > base+10 || fds > baseFD+10 {
		t.Fatalf("goroutines %d → %d, fds %d → %d over 4 freezes", base, g, baseFD, fds)
	}
	if n := masking.LivePipelines(); n != basePipes { // streaming again: one capture, one encoder
		t.Fatalf("GStreamer pipelines %d → %d over 4 freezes", basePipes, n)
	}
}

// blockingSink is an encoder that stops taking frames (a hung GStreamer
// writer): after its first frame, Write never returns until released.
type blockingSink struct {
	n       atomic.Int64
	release chan struct{}
}

func (b *blockingSink) Write(*masking.Frame) error {
	if b.n.Add(1) > 1 {
		<-b.release
	}
	return nil
}

func (b *blockingSink) Close() error { return nil }

// A frame path blocked past its bound is not alive (the agent's watchdog
// then stops pinging systemd).
func TestPipelineNotAliveWhenTheEncoderHangs(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "enc", Address: "127.0.97.44", Username: "u", Password: "p", Scene: "badge", FPS: 10, Width: 320, Height: 180})
	open, _ := masking.CaptureConfig{Camera: "enc", URL: sim.Camera("enc").RTSPURL("main"), Username: "u", Password: "p"}.Opener()
	sink := &blockingSink{release: make(chan struct{})}
	p, _ := masking.NewPipeline(masking.PipelineConfig{Camera: "enc", Masker: fullMasker(t, "enc"), Open: open, Sink: sink, CallBound: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testkit.WaitFor(t, 30*time.Second, "the encoder blocked", func() bool { return sink.n.Load() >= 2 })
	t0 := time.Now()
	testkit.WaitFor(t, 10*time.Second, "frame path not alive", func() bool { return !p.Alive() })
	t.Logf("hung encoder detected after %v", time.Since(t0).Round(time.Millisecond))
	cancel()
	close(sink.release)
	<-done
}

// fullMasker masks the whole frame of a fixed view.
func fullMasker(t *testing.T, cam string) *masking.Masker {
	t.Helper()
	m, err := masking.NewMasker(cam, maskspec.FailBlank)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Masks: []maskspec.Mask{{Name: "all", Style: maskspec.StyleFull}}}}); err != nil {
		t.Fatal(err)
	}
	m.SetView("", true)
	return m
}
