package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// streamsConfig: camsim → `velo run` with N cameras against N ffmpeg
// commands doing the same (decode, the same two masks, x264 with the same
// settings and rate control), CPU per frame from /proc.
type streamsConfig struct {
	ns      []int
	measure time.Duration // CPU window per N
	warmup  time.Duration
	rssRun  time.Duration // RSS flatness run at the largest N
	fps     int
	kbps    int
	env     []string // extra environment for velo run (e.g. GOGC=50)
	codecs  []string // the cameras' encodings, one figure each (H264, H265)
}

// The two masks of the streams figure, as rectangles ffmpeg can draw the
// same: a fill (drawbox) and a pixelate (crop, pixelize, overlay), aligned
// to the 1080p pixelate block so both sides average the same blocks.
var (
	streamFill     = [4]int{80, 80, 480, 400}    // x, y, w, h in pixels
	streamPixelate = [4]int{1200, 560, 560, 400} // multiples of FloorBlock(1920) = 40
)

func rectPoly(r [4]int) []maskspec.Point {
	x0, y0 := float64(r[0])/W, float64(r[1])/H
	x1, y1 := float64(r[0]+r[2])/W, float64(r[1]+r[3])/H
	return []maskspec.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// streamsFilter is ffmpeg's equivalent of the two masks.
func streamsFilter() string {
	f, p, b := streamFill, streamPixelate, maskspec.FloorBlock(W)
	return fmt.Sprintf("[0:v]drawbox=x=%d:y=%d:w=%d:h=%d:color=black:t=fill,split[a][b];[b]crop=%d:%d:%d:%d,pixelize=w=%d:h=%d[p];[a][p]overlay=%d:%d",
		f[0], f[1], f[2], f[3], p[2], p[3], p[0], p[1], b, b, p[0], p[1])
}

// x264Args are ffmpeg's x264 settings matching the agent's x264enc: CBR
// with a VBV of 600 ms (x264enc's pass=cbr, vbv-buf-capacity=600).
func x264Args(kbps, gop int) []string {
	return []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-b:v", fmt.Sprintf("%dk", kbps), "-maxrate", fmt.Sprintf("%dk", kbps), "-bufsize", fmt.Sprintf("%dk", kbps*600/1000), "-g", fmt.Sprint(gop)}
}

func streamsFigures(dir string, sc streamsConfig) error {
	if len(sc.ns) == 0 {
		return nil
	}
	maxN := 0
	for _, n := range sc.ns {
		maxN = max(maxN, n)
	}
	bin, err := buildVelo(dir)
	if err != nil {
		return err
	}
	for i, cd := range sc.codecs {
		sim, err := startSim(maxN, sc.fps, cd)
		if err != nil {
			return err
		}
		err = codecFigures(dir, bin, sim, cd, sc)
		if err == nil && i == 0 {
			err = rssFlatness(dir, bin, sim, maxN, sc)
		}
		sim.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// codecFigures runs the streams figure with cameras sending cd.
func codecFigures(dir, bin string, sim *camsim.Sim, cd string, sc streamsConfig) error {
	fmt.Printf("\nstreams: camsim 1080p%d %s → N × (decode, fill + pixelate, x264 ultrafast/zerolatency CBR %d kbit/s); %s per N after %s warm-up\n", sc.fps, cd, sc.kbps, sc.measure, sc.warmup)
	var ns, rss []float64
	for _, n := range sc.ns {
		v, err := runVeloStreams(dir, bin, sim, n, sc, sc.measure, nil)
		if err != nil {
			return err
		}
		f, err := runFFmpegStreams(dir, sim, n, sc)
		if err != nil {
			return err
		}
		ratio := v.cpuPerFrame / f.cpuPerFrame
		ok := ratio <= 0.85 && v.keptUp(sc.fps) && f.keptUp(sc.fps)
		report(fmt.Sprintf("StreamsVsFFmpeg/%s/N=%d", cd, n), ratio, "≤ 0.85", ok, fmt.Sprintf("(velo %.2f ms/frame at %.1f fps, RSS %.0f MB; ffmpeg %.2f ms/frame at %.1f fps, RSS %.0f MB per process)",
			v.cpuPerFrame*1e3, v.fps/float64(n), v.rssMB, f.cpuPerFrame*1e3, f.fps/float64(n), f.rssMB/float64(n)))
		ks := v.sysShare / f.sysShare
		report(fmt.Sprintf("KernelShareVsFFmpeg/%s/N=%d", cd, n), ks, "≤ 1.0", ks <= 1, fmt.Sprintf("(CPU in the kernel: velo %.1f%%, ffmpeg %.1f%%; context switches per frame: velo %.1f, ffmpeg %.1f)",
			v.sysShare*100, f.sysShare*100, v.switchesPerFrame, f.switchesPerFrame))
		ns, rss = append(ns, float64(n)), append(rss, v.rssMB)
	}
	if len(ns) >= 2 {
		slope, base := linearFit(ns, rss)
		report("RSSPerStream/"+cd, slope, "≤ 60 MB", slope <= 60, fmt.Sprintf("(velo RSS ≈ %.0f MB + %.1f MB per 1080p stream, fit over N)", base, slope))
	}
	return nil
}

// rssFlatness runs maxN streams for sc.rssRun and reports the largest
// deviation of RSS from its mean over the second half of the run.
func rssFlatness(dir, bin string, sim *camsim.Sim, n int, sc streamsConfig) error {
	if sc.rssRun <= 0 {
		return nil
	}
	var samples []float64
	_, err := runVeloStreams(dir, bin, sim, n, sc, sc.rssRun, func(rssMB float64) { samples = append(samples, rssMB) })
	if err != nil {
		return err
	}
	tail := samples[len(samples)/2:]
	if len(tail) == 0 {
		return nil
	}
	var mean, dev float64
	for _, s := range tail {
		mean += s / float64(len(tail))
	}
	for _, s := range tail {
		dev = max(dev, abs(s-mean)/mean)
	}
	report(fmt.Sprintf("RSSFlat/N=%d", n), dev, "≤ 0.02", dev <= 0.02, fmt.Sprintf("(largest deviation from the mean %.0f MB over the second half of %s; %d samples, first %.0f MB, last %.0f MB)",
		mean, sc.rssRun, len(samples), samples[0], samples[len(samples)-1]))
	return nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func linearFit(x, y []float64) (slope, icept float64) {
	var mx, my float64
	for i := range x {
		mx += x[i] / float64(len(x))
		my += y[i] / float64(len(y))
	}
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	slope = sxy / sxx
	return slope, my - slope*mx
}

func buildVelo(dir string) (string, error) {
	bin, _ := filepath.Abs(filepath.Join(dir, "velo"))
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/velo")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build velo (run from the repository root): %w", err)
	}
	return bin, nil
}

const simUser, simPass = "bench", "bench-camera-pass"

func startSim(n, fps int, encoding string) (*camsim.Sim, error) {
	var cfg camsim.Config
	for i := 0; i < n; i++ {
		cfg.Cameras = append(cfg.Cameras, camsim.CameraConfig{ID: fmt.Sprintf("b%d", i+1), Address: fmt.Sprintf("127.0.98.%d", 11+i),
			Username: simUser, Password: simPass, Scene: "street", FPS: fps, Width: W, Height: H, Traffic: true, Encoding: encoding})
	}
	sim, err := camsim.New(cfg, camsim.Options{})
	if err != nil {
		return nil, err
	}
	if err := sim.Start(context.Background()); err != nil {
		return nil, err
	}
	return sim, nil
}

// usage is what /proc says of a process (or the sum over several).
type usage struct {
	cpu, sys, rssMB, switches float64 // CPU s, of which in the kernel; MB; context switches
}

func (u usage) add(v usage) usage {
	return usage{u.cpu + v.cpu, u.sys + v.sys, u.rssMB + v.rssMB, u.switches + v.switches}
}

// procUsage reads a process's CPU seconds (user + system), resident MB and
// context switches (voluntary + not: the threads' hand-offs and futex
// waits) from /proc.
func procUsage(pid int) (usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64) // fields 14, 15 (utime, stime) in clock ticks
	st, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseFloat(f[21], 64) // field 24: rss in pages
	u := usage{cpu: (ut + st) / 100, sys: st / 100, rssMB: pages * float64(os.Getpagesize()) / (1 << 20)}
	u.switches = threadSwitches(pid)
	return u, nil
}

// threadSwitches sums the context switches of pid's live threads
// (/proc/PID/status counts the main thread only).
func threadSwitches(pid int) float64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				n += c
			}
		}
	}
	return n
}

// streamRun is one side's measurement.
type streamRun struct {
	cpuPerFrame, fps, rssMB float64
	sysShare                float64 // share of the CPU spent in the kernel
	switchesPerFrame        float64 // context switches of the process per frame
	n                       int
}

func (r streamRun) keptUp(fps int) bool { return r.fps >= 0.9*float64(fps*r.n) }

func freeLoopback() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sampleWhile calls f every second until d has passed.
func sampleWhile(d time.Duration, f func()) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(time.Second)
		f()
	}
}

// frameCounter reads ffmpeg -progress output and keeps the last frame=.
type frameCounter struct {
	mu sync.Mutex
	n  int
}

func (c *frameCounter) read(sc *bufio.Scanner) {
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
			if k, err := strconv.Atoi(v); err == nil {
				c.mu.Lock()
				c.n = k
				c.mu.Unlock()
			}
		}
	}
}

func (c *frameCounter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// parseStreams reads the streams flags ("1,2,3,4"; "" skips the figure).
func parseStreams(list, codecs string, measure, warmup, rss time.Duration, env string) (streamsConfig, error) {
	sc := streamsConfig{measure: measure, warmup: warmup, rssRun: rss, fps: 10, kbps: 2000}
	for _, c := range strings.Split(codecs, ",") {
		switch c = strings.ToUpper(strings.TrimSpace(c)); c {
		case "H264", "H265":
			sc.codecs = append(sc.codecs, c)
		case "":
		default:
			return sc, fmt.Errorf("-stream-codecs: %q is not H264 or H265", c)
		}
	}
	if len(sc.codecs) == 0 {
		sc.codecs = []string{"H264"}
	}
	if env != "" {
		sc.env = strings.Split(env, ",")
	}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 16 {
			return sc, fmt.Errorf("-streams: %q is not a number of cameras 1..16", f)
		}
		sc.ns = append(sc.ns, n)
	}
	if measure < 5*time.Second {
		return sc, fmt.Errorf("-stream-measure %s: at least 5s (stats telemetry comes every 5 s)", measure)
	}
	return sc, nil
}
