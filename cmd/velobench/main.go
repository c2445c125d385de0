// Command velobench measures Velo's masking against ffmpeg on this machine
// and prints ratios measured in one run, each against its goal (README,
// Benchmarks; docs/masking.md). `make bench` runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
)

const (
	W, H = 1920, 1080
)

func main() {
	dir := flag.String("dir", "build/bench", "work folder for the generated clip")
	frames := flag.Int("frames", 300, "frames in the generated clip")
	runs := flag.Int("runs", 5, "runs per figure (median)")
	agentOnly := flag.Bool("agent-only", false, "only BlankLatency and TelemetryFanout")
	viewOnly := flag.Bool("viewcheck-only", false, "only ViewCheckVsDecode")
	anonOnly := flag.Bool("anonymise-only", false, "only the dynamic anonymisation figures")
	streams := flag.String("streams", "1,2,3,4", "N for the streams figure (camsim → velo run with N cameras vs N ffmpeg); empty: skip")
	streamSecs := flag.Duration("stream-measure", 20*time.Second, "CPU window per N in the streams figure")
	streamWarm := flag.Duration("stream-warmup", 10*time.Second, "warm-up before each streams measurement")
	rssRun := flag.Duration("rss-run", time.Minute, "RSS flatness run at the largest N (the goal is stated for 10m); 0: skip")
	veloEnv := flag.String("velo-env", "", "extra environment for velo run in the streams figure, comma-separated (e.g. GOGC=50)")
	streamCodecs := flag.String("stream-codecs", "H264,H265", "the cameras' encodings in the streams figure, one figure each")
	streamsOnly := flag.Bool("streams-only", false, "only the streams and RSS figures")
	kernelsOnly := flag.Bool("kernels-only", false, "only the mask kernels (MaskFloor, KernelVsOpenCV, FillVsCopy)")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(1, err)
	}
	sc, err := parseStreams(*streams, *streamCodecs, *streamSecs, *streamWarm, *rssRun, *veloEnv)
	if err != nil {
		fail(2, err)
	}
	// One part alone when a flag asks for it, else everything.
	for _, part := range []struct {
		only bool
		run  func() error
	}{
		{*agentOnly, func() error { return agentFigures(*dir) }},
		{*anonOnly, func() error { return anonymiseFigures(*dir) }},
		{*streamsOnly, func() error { return streamsFigures(*dir, sc) }},
		{*kernelsOnly, func() error { return kernelFigures(*dir, *frames, *runs) }},
		{*viewOnly, func() error { return viewCheckFigure(*dir, *frames, *runs) }},
	} {
		if part.only {
			if err := part.run(); err != nil {
				fail(1, err)
			}
			summary()
			return
		}
	}
	if err := run(*dir, *frames, *runs, sc); err != nil {
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "velobench:", err)
	os.Exit(code)
}

type result struct {
	name  string
	ratio float64
	goal  string
	ok    bool
	note  string
}

var results []result

func report(name string, ratio float64, goal string, ok bool, note string) {
	r := result{name, ratio, goal, ok, note}
	results = append(results, r)
	verdict := "MEETS"
	if !ok {
		verdict = "MISSES"
	}
	fmt.Printf("%-34s %8.3f   goal %-7s %-6s %s\n", name, ratio, goal, verdict, note)
}

// benchStyles are the mask styles measured, each at benchCovers() of the
// image.
func benchStyles() []maskspec.Style {
	return []maskspec.Style{maskspec.StyleFill, maskspec.StylePixelate, maskspec.StyleBlur}
}

func benchCovers() []float64 { return []float64{0.10, 0.40} }

func run(dir string, nframes, runs int, sc streamsConfig) error {
	clip, err := ensureClip(dir, nframes)
	if err != nil {
		return err
	}
	frames, err := decodeAll(clip, 60)
	if err != nil {
		return err
	}
	fmt.Printf("%d decoded frames of %dx%d; medians of %d runs; CPU time per frame\n\n", len(frames), W, H, runs)
	if _, err := maskFloorFigures(frames, runs); err != nil {
		return err
	}
	fmt.Println()
	if err := maskVsFFmpegFigures(clip, frames, nframes, runs); err != nil {
		return err
	}
	if err := viewCheckFigure(dir, nframes, runs); err != nil {
		return err
	}
	if err := anonymiseFigures(dir); err != nil {
		return err
	}
	fmt.Println()
	pipelineFigures(dir, clip, nframes)
	if err := streamsFigures(dir, sc); err != nil {
		return err
	}
	fmt.Println()
	if err := agentFigures(dir); err != nil {
		return err
	}
	summary()
	return nil
}

// kernelFigures measures the mask kernels alone on decoded frames.
func kernelFigures(dir string, nframes, runs int) error {
	clip, err := ensureClip(dir, nframes)
	if err != nil {
		return err
	}
	frames, err := decodeAll(clip, 60)
	if err != nil {
		return err
	}
	_, err = maskFloorFigures(frames, runs)
	return err
}

// ensureClip generates the benchmark clip in dir unless it is there.
func ensureClip(dir string, nframes int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	clip := filepath.Join(dir, fmt.Sprintf("testsrc2-%dx%d-%d.mkv", W, H, nframes))
	if _, err := os.Stat(clip); err == nil {
		return clip, nil
	}
	fmt.Printf("generating %s (testsrc2 + temporal noise, H.264 4 Mbit/s)\n", clip)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=%dx%d:rate=30", W, H), "-frames:v", fmt.Sprint(nframes), "-vf", "noise=alls=12:allf=t",
		"-c:v", "libx264", "-preset", "veryfast", "-b:v", "4M", "-g", "60", "-pix_fmt", "yuv420p", clip)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("generate clip: %w", err)
	}
	return clip, nil
}

// maskVsFFmpegFigures reports masking CPU against ffmpeg's filter-only CPU
// on the same decoded frames, both masking the same rectangle with the
// same block and radius.
func maskVsFFmpegFigures(clip string, frames [][]byte, nframes, runs int) error {
	decodeOnly := median(runs, func() float64 { return ffmpegCPU(clip, "", nframes) })
	fmt.Printf("ffmpeg decode-only: %.3f ms per frame\n", decodeOnly*1e3)
	for _, st := range benchStyles() {
		for _, cover := range benchCovers() {
			r, err := benchRaster(st, rectPoly(boxRect(cover)))
			if err != nil {
				return err
			}
			ours := maskCPUPerFrame(frames, runs, func(_ int, f *masking.Frame) { _ = r.Apply(f) })
			filter := ffmpegFilter(st, boxRect(cover))
			with := median(runs, func() float64 { return ffmpegCPU(clip, filter, nframes) })
			fcost := math.Max(with-decodeOnly, 1e-6)
			key := fmt.Sprintf("%s/cover=%d", st, int(cover*100))
			report("MaskVsFFmpeg/"+key, ours/fcost, "≤ 0.5", ours/fcost <= 0.5, fmt.Sprintf("(velo %.3f ms, ffmpeg filter %.3f ms; the same %.1f%% rectangle)", ours*1e3, fcost*1e3, r.Covered()*100))
		}
	}
	return nil
}

// pipelineFigures reports the real path decode → mask → encode against the
// ffmpeg command line doing the same (same rectangle, equivalent filter,
// same x264 settings and rate control), and prints both x264 option
// strings.
func pipelineFigures(dir, clip string, nframes int) {
	cases := []struct {
		name  string
		style maskspec.Style
		cover float64
	}{{"none", "", 0}, {"fill40", maskspec.StyleFill, 0.4}, {"pixelate40", maskspec.StylePixelate, 0.4}, {"blur40", maskspec.StyleBlur, 0.4}}
	var veloOpts string
	for _, c := range cases {
		ours := median(3, func() float64 { v, o, _ := pipelineCPU(clip, c.style, c.cover); veloOpts = o; return v })
		filter := ""
		if c.style != "" {
			filter = ffmpegFilter(c.style, boxRect(c.cover))
		}
		ff := median(3, func() float64 { return ffmpegEncodeCPU(clip, filter, nframes) })
		report("PipelineVsFFmpeg/"+c.name, ours/ff, "≤ 0.8", ours/ff <= 0.8, fmt.Sprintf("(velo %.2f ms, ffmpeg %.2f ms)", ours*1e3, ff*1e3))
	}
	compareX264(dir, clip, veloOpts)
}

func summary() {
	met := 0
	for _, r := range results {
		if r.ok {
			met++
		}
	}
	fmt.Printf("\n%d of %d figures meet their goal\n", met, len(results))
}

// agentFigures measures BlankLatency and TelemetryFanout.
func agentFigures(dir string) error {
	leaked, total := blankLatency(2000)
	report("BlankLatency", float64(leaked), "= 0", leaked == 0, fmt.Sprintf("(frames out after the view was marked not approved; 2000 flips, %d frames)", total))
	r, err := medianFanout(dir, 8000, 3)
	if err != nil {
		return fmt.Errorf("TelemetryFanout: %w", err)
	}
	report("TelemetryFanout", r.outbox/r.direct, "≥ 0.8", r.outbox/r.direct >= 0.8, fmt.Sprintf("(outbox %.0f ev/s, paho direct %.0f ev/s; Mosquitto, QoS 1, 8 producers, 32 in flight each, sender window 256; median of 3 runs)", r.outbox, r.direct))
	// Producers that wait for each save cannot beat producers ÷ one
	// commit: printed beside, not a goal.
	bound := benchProducers / r.fsync.Seconds()
	fmt.Printf("%-34s %8.3f   (blocking Event: %.0f ev/s ÷ paho direct; bound by the disk: %d producers ÷ fdatasync %v = %.0f ev/s, %.2f of it)\n",
		"TelemetryFanoutBlocking", r.blocking/r.direct, r.blocking, benchProducers, r.fsync.Round(10*time.Microsecond), bound, r.blocking/bound)
	return nil
}

// octagon returns a regular-ish octagon centred in the frame covering
// about cover of the image area.
func octagon(cover float64) []maskspec.Point {
	// Area of a regular octagon with circumradius r (in pixels): 2√2 r².
	r := math.Sqrt(cover * W * H / (2 * math.Sqrt2))
	var pts []maskspec.Point
	for i := 0; i < 8; i++ {
		a := math.Pi/8 + float64(i)*math.Pi/4
		pts = append(pts, maskspec.Point{X: (W/2 + r*math.Cos(a)) / W, Y: (H/2 + r*math.Sin(a)) / H})
	}
	return pts
}

// boxRect is a centred rectangle (x, y, w, h in pixels) covering about
// cover of the frame, on the 1080p pixelate grid (FloorBlock(1920) = 40),
// so Velo and ffmpeg average the same blocks.
func boxRect(cover float64) [4]int {
	b := maskspec.FloorBlock(W)
	w := int(math.Sqrt(cover)*W) / b * b
	h := int(math.Sqrt(cover)*H) / b * b
	return [4]int{(W - w) / 2 / b * b, (H - h) / 2 / b * b, w, h}
}

// ffmpegFilter is ffmpeg's equivalent of a Velo mask on rectangle r:
// drawbox fill; crop + pixelize + overlay with Velo's block; crop +
// boxblur + overlay with Velo's radius (chroma at half, as Velo does).
func ffmpegFilter(st maskspec.Style, r [4]int) string {
	x, y, w, h := r[0], r[1], r[2], r[3]
	switch st {
	case maskspec.StylePixelate:
		b := maskspec.FloorBlock(W)
		return fmt.Sprintf("split[a][b];[b]crop=%d:%d:%d:%d,pixelize=w=%d:h=%d[p];[a][p]overlay=%d:%d", w, h, x, y, b, b, x, y)
	case maskspec.StyleBlur:
		s := maskspec.FloorStrength(W)
		return fmt.Sprintf("split[a][b];[b]crop=%d:%d:%d:%d,boxblur=lr=%d:lp=1:cr=%d:cp=1[p];[a][p]overlay=%d:%d", w, h, x, y, s, s/2, x, y)
	}
	return fmt.Sprintf("drawbox=x=%d:y=%d:w=%d:h=%d:color=black:t=fill", x, y, w, h)
}

var benchRE = regexp.MustCompile(`bench: utime=([0-9.]+)s stime=([0-9.]+)s`)

// ffmpegCPU runs decode (+filter) single-threaded, CPU seconds per frame.
func ffmpegCPU(clip, filter string, n int) float64 {
	args := []string{"-hide_banner", "-nostdin", "-benchmark", "-threads", "1", "-i", clip}
	if filter != "" {
		args = append(args, "-filter_threads", "1", "-filter_complex_threads", "1", "-filter_complex", "[0:v]"+filter)
	}
	args = append(args, "-f", "null", "-")
	return benchCPU(args) / float64(n)
}

// ffmpegEncodeCPU runs decode (+filter) + x264 with Velo's settings.
func ffmpegEncodeCPU(clip, filter string, n int) float64 {
	args := []string{"-hide_banner", "-nostdin", "-benchmark", "-i", clip}
	if filter != "" {
		args = append(args, "-filter_complex", "[0:v]"+filter)
	}
	args = append(args, x264Args(4000, 60)...)
	args = append(args, "-f", "null", "-")
	return benchCPU(args) / float64(n)
}

func benchCPU(args []string) float64 {
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	m := benchRE.FindSubmatch(out)
	if err != nil || m == nil {
		fmt.Fprintf(os.Stderr, "ffmpeg %v: %v\n%s\n", args, err, tail(out))
		return math.NaN()
	}
	u, _ := strconv.ParseFloat(string(m[1]), 64)
	s, _ := strconv.ParseFloat(string(m[2]), 64)
	return u + s
}

func tail(b []byte) []byte {
	if len(b) > 800 {
		return b[len(b)-800:]
	}
	return b
}

func decodeAll(clip string, n int) ([][]byte, error) {
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", clip, "-frames:v", fmt.Sprint(n), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var frames [][]byte
	for {
		b := make([]byte, W*H*3/2)
		if _, err := io.ReadFull(out, b); err != nil {
			break
		}
		frames = append(frames, b)
	}
	if err := cmd.Wait(); err != nil && len(frames) == 0 {
		return nil, err
	}
	return frames, nil
}

func cpuNow() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// cpuPerOp runs op n times in this goroutine and returns CPU s per op.
func cpuPerOp(n int, op func(int)) float64 {
	c0 := cpuNow()
	for i := 0; i < n; i++ {
		op(i)
	}
	return (cpuNow() - c0) / float64(n)
}

func median(runs int, f func() float64) float64 {
	v := make([]float64, runs)
	for i := range v {
		v[i] = f()
	}
	sort.Float64s(v)
	return v[runs/2]
}
