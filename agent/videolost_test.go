package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/testkit"
	"velo/onvif/camsim"
)

// cameraEncoder finds the simulator's ffmpeg encoder publishing to
// rtspHost (a child of this test process).
func cameraEncoder(t *testing.T, rtspHost string) *os.Process {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		cmd, err2 := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err1 != nil || err2 != nil {
			continue
		}
		// stat: pid (comm) state ppid …
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) && strings.Contains(string(cmd), "ffmpeg") && strings.Contains(string(cmd), rtspHost) {
			p, _ := os.FindProcess(pid)
			return p
		}
	}
	t.Fatalf("no camsim encoder publishing to %s", rtspHost)
	return nil
}

// The camera's encoder hangs (SIGSTOP: its RTSP server still answers
// DESCRIBE and PLAY, and keeps the connections open, but no packet comes),
// again and again. Each time: the camera goes video-lost with a video_lost
// event within video_lost_after; nothing goes out; reconnect attempts wait
// for a first frame until open_timeout. Through the appsink path
// (masking/gstapp) that wait is the appsink's timed pull: each attempt
// returns, nothing stays stuck, and Health stays nil (lost and retrying is
// alive). Through the former gocv path (VELO_GST_PATH=opencv) the attempts
// hang in OpenCV's open and are abandoned, and once two are stuck Health
// fails (so the systemd watchdog stops). When the encoder
// resumes, the video is restored (event, status streaming, Health nil)
// and goroutines and threads are back where they were.
func TestVideoLostWhenTheCameraHangs(t *testing.T) {
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "h", Address: "127.0.97.45", Username: "velo", Password: "pw", Serial: "SER-H", Scene: "badge",
		FPS: 10, GOPFrames: 5, Width: 320, Height: 180})
	cc := sim.Camera("h").Config()
	text := fmt.Sprintf(`site: {id: t, name: T, controller: C, purposes: [p]}
gateway: gw
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "127.0.0.1:0"}
outputs: {rtsp_listen: "127.0.0.1:%d"}
cameras:
  - id: h
    purpose: entrance
    match: {serial: SER-H}
    xaddr: %s
    username: velo
    password_file: cam.pw
    capture: {open_timeout: 2s, read_timeout: 1s, video_lost_after: 3s}
    masks: [{name: all, style: full, polygon: [{x: 0, y: 0}, {x: 1, y: 0}, {x: 1, y: 1}]}]
    approval: {by: A, date: 2026-01-01, document: D}
`, testkit.FreePort(t), sim.Camera("h").XAddr())
	dir := t.TempDir()
	for name, s := range map[string]string{"cam.pw": "pw\n", "site.yaml": text} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, zerolog.Nop(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	status := func() string { s, _ := a.State("h"); return s.status() }
	encoded := func() uint64 {
		a.mu.Lock()
		w := a.workers["h"]
		a.mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.pl == nil {
			return 0
		}
		return w.pl.Stats().Encoded
	}
	kinds := func(k event.Kind) int {
		n := 0
		for _, e := range a.Events() {
			if e.Kind == k && e.Camera == "h" {
				n++
			}
		}
		return n
	}
	testkit.WaitFor(t, 30*time.Second, "streaming", func() bool { return status() == "streaming" && encoded() > 10 })
	a.beat.Store(time.Now().Add(time.Hour).UnixNano()) // the stats loop runs every 5 s: not under test here
	enc := cameraEncoder(t, fmt.Sprintf("%s:%d", cc.Address, cc.RTSPPort))
	defer enc.Signal(syscall.SIGCONT)
	base, threads := runtime.NumGoroutine(), osThreads()
	for cycle := 1; cycle <= 3; cycle++ {
		if err := a.Health(); err != nil {
			t.Fatalf("cycle %d: streaming but unhealthy: %v", cycle, err)
		}
		if err := enc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		testkit.WaitFor(t, 8*time.Second, "video_lost", func() bool { return kinds(event.VideoLost) == cycle && status() == "video-lost" })
		t.Logf("cycle %d: video_lost after %v", cycle, time.Since(t0).Round(time.Millisecond))
		out := encoded()
		if os.Getenv("VELO_GST_PATH") == "opencv" {
			testkit.WaitFor(t, 20*time.Second, "unhealthy: hung opens piled up", func() bool { return a.Health() != nil })
			t.Logf("cycle %d: unhealthy after %v: %v", cycle, time.Since(t0).Round(time.Millisecond), a.Health())
		} else {
			for range 20 { // several 2 s open attempts: none left hanging
				if err := a.Health(); err != nil {
					t.Fatalf("cycle %d: unhealthy while lost and retrying: %v", cycle, err)
				}
				time.Sleep(300 * time.Millisecond)
			}
		}
		if n := encoded(); n > out+2 {
			t.Fatalf("cycle %d: %d frames out while the video was lost", cycle, n-out)
		}
		if err := enc.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 30*time.Second, "video_restored", func() bool { return kinds(event.VideoRestored) == cycle && status() == "streaming" })
		testkit.WaitFor(t, time.Minute, "healthy again", func() bool { return a.Health() == nil })
		t.Logf("cycle %d: restored and healthy after %v", cycle, time.Since(t0).Round(time.Millisecond))
	}
	var g, th int
	testkit.WaitFor(t, 30*time.Second, "goroutines and threads back", func() bool {
		g, th = runtime.NumGoroutine(), osThreads()
		return g <= base+15 && th <= threads+15
	})
	t.Logf("goroutines %d → %d, threads %d → %d over 3 hangs", base, g, threads, th)
}

// osThreads counts the process's threads (GStreamer's included).
func osThreads() int {
	ents, _ := os.ReadDir("/proc/self/task")
	return len(ents)
}
