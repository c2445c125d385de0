// Command velobench measures Velo's masking against ffmpeg on this machine
// and prints ratios measured in one run, each against its goal (README,
// Benchmarks; docs/masking.md). `make bench` runs it.
package main

import (
	"context"
	"errors"
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
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "velobench:", err)
		os.Exit(1)
	}
	if *agentOnly {
		if err := agentFigures(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "velobench:", err)
			os.Exit(1)
		}
		summary()
		return
	}
	if *anonOnly {
		if err := anonymiseFigures(*dir); err != nil {
			fmt.Fprintln(os.Stderr, "velobench:", err)
			os.Exit(1)
		}
		summary()
		return
	}
	if *viewOnly {
		if err := viewCheckFigure(*dir, *frames, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "velobench:", err)
			os.Exit(1)
		}
		summary()
		return
	}
	if err := run(*dir, *frames, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "velobench:", err)
		os.Exit(1)
	}
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

func run(dir string, nframes, runs int) error {
	clip, err := ensureClip(dir, nframes)
	if err != nil {
		return err
	}
	frames, err := decodeAll(clip, 60)
	if err != nil {
		return err
	}
	fmt.Printf("%d decoded frames of %dx%d; medians of %d runs; CPU time per frame\n\n", len(frames), W, H, runs)
	maskCPU, err := maskFloorFigures(frames, runs)
	if err != nil {
		return err
	}
	fmt.Println()
	maskVsFFmpegFigures(clip, nframes, runs, maskCPU)
	if err := viewCheckFigure(dir, nframes, runs); err != nil {
		return err
	}
	if err := anonymiseFigures(dir); err != nil {
		return err
	}
	fmt.Println()
	pipelineFigures(clip, nframes)
	fmt.Println()
	if err := agentFigures(dir); err != nil {
		return err
	}
	summary()
	return nil
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

// maskFloorFigures reports each style's masking CPU per frame against a
// memcpy of one BGR frame, and returns that CPU by "style/cover=N".
func maskFloorFigures(frames [][]byte, runs int) (map[string]float64, error) {
	// memcpy of one BGR frame: the physical floor.
	bgrA, bgrB := make([]byte, W*H*3), make([]byte, W*H*3)
	floor := median(runs, func() float64 {
		return cpuPerOp(10*len(frames), func(int) { copy(bgrB, bgrA) })
	})
	fmt.Printf("floor: memcpy of one BGR frame %.3f ms\n", floor*1e3)
	floorGoal := map[maskspec.Style][2]float64{maskspec.StyleFill: {0.1, 0.4}, maskspec.StylePixelate: {1.0, 3.0}, maskspec.StyleBlur: {1.5, 5.0}}
	maskCPU := map[string]float64{}
	for _, st := range benchStyles() {
		for ci, cover := range benchCovers() {
			per, covered, err := maskCPUPerFrame(frames, runs, st, cover)
			if err != nil {
				return nil, err
			}
			key := fmt.Sprintf("%s/cover=%d", st, int(cover*100))
			maskCPU[key] = per
			g := floorGoal[st][ci]
			report("MaskFloor/"+key, per/floor, fmt.Sprintf("≤ %.1f", g), per/floor <= g, fmt.Sprintf("(%.3f ms, covered %.1f%%)", per*1e3, covered*100))
		}
	}
	return maskCPU, nil
}

// maskCPUPerFrame is the median CPU of masking one frame with an octagon
// of style st covering cover of the image, and the fraction it covers.
func maskCPUPerFrame(frames [][]byte, runs int, st maskspec.Style, cover float64) (per, covered float64, err error) {
	set := maskspec.MaskSet{Camera: "bench", Masks: []maskspec.Mask{{Name: "octagon", Polygon: octagon(cover), Style: st, Block: 16, Strength: 15}}}
	if err := set.Validate(); err != nil {
		return 0, 0, err
	}
	r, err := masking.Rasterize(&set, W, H)
	if err != nil {
		return 0, 0, err
	}
	work := make([]*masking.Frame, len(frames))
	for i := range work {
		work[i] = &masking.Frame{W: W, H: H, Data: make([]byte, len(frames[i]))}
	}
	per = median(runs, func() float64 {
		var total float64
		for rep := 0; rep < 10; rep++ { // fresh frames each pass, copy not timed
			for i := range work {
				copy(work[i].Data, frames[i])
			}
			total += cpuPerOp(len(work), func(i int) { _ = r.Apply(work[i]) })
		}
		return total / 10
	})
	return per, r.Covered(), nil
}

// maskVsFFmpegFigures reports masking CPU against ffmpeg's filter-only CPU
// on the same decoded frames.
func maskVsFFmpegFigures(clip string, nframes, runs int, maskCPU map[string]float64) {
	decodeOnly := median(runs, func() float64 { return ffmpegCPU(clip, "", nframes) })
	fmt.Printf("ffmpeg decode-only: %.3f ms per frame\n", decodeOnly*1e3)
	for _, st := range benchStyles() {
		for _, cover := range benchCovers() {
			filter := ffmpegFilter(st, cover)
			with := median(runs, func() float64 { return ffmpegCPU(clip, filter, nframes) })
			fcost := math.Max(with-decodeOnly, 1e-6)
			key := fmt.Sprintf("%s/cover=%d", st, int(cover*100))
			ratio := maskCPU[key] / fcost
			report("MaskVsFFmpeg/"+key, ratio, "≤ 0.5", ratio <= 0.5, fmt.Sprintf("(ffmpeg filter %.3f ms)", fcost*1e3))
		}
	}
}

// pipelineFigures reports the real path decode → mask → encode against the
// ffmpeg command line, then the streams two cores sustain by each.
func pipelineFigures(clip string, nframes int) {
	cases := []struct {
		name  string
		style maskspec.Style
		cover float64
	}{{"none", "", 0}, {"fill40", maskspec.StyleFill, 0.4}, {"pixelate40", maskspec.StylePixelate, 0.4}, {"blur40", maskspec.StyleBlur, 0.4}}
	oursAll, ffAll := make([]float64, len(cases)), make([]float64, len(cases))
	for i, c := range cases {
		ours := median(3, func() float64 { v, _ := pipelineCPU(clip, c.style, c.cover); return v })
		filter := ""
		if c.style != "" {
			filter = ffmpegFilter(c.style, c.cover)
		}
		ff := median(3, func() float64 { return ffmpegEncodeCPU(clip, filter, nframes) })
		oursAll[i], ffAll[i] = ours, ff
		report("PipelineVsFFmpeg/"+c.name, ours/ff, "≤ 0.8", ours/ff <= 0.8, fmt.Sprintf("(velo %.2f ms, ffmpeg %.2f ms)", ours*1e3, ff*1e3))
	}
	fmt.Println()
	// Streams two cores sustain at 75 % CPU, from the per-frame CPU above.
	for i, c := range cases {
		budget := 2 * 0.75
		ours := math.Floor(budget / (oursAll[i] * 30))
		ff := math.Floor(budget / (ffAll[i] * 30))
		ratio := ours / math.Max(ff, 1)
		report("StreamsPer2Cores/"+c.name, ratio, "≥ 1.25", ratio >= 1.25, fmt.Sprintf("(velo %.0f, ffmpeg %.0f 1080p30 streams; from CPU per frame)", ours, ff))
	}
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

// octBox is the octagon's bounding box in pixels (even-aligned).
func octBox(cover float64) (x, y, w, h int) {
	p := octagon(cover)
	minX, minY, maxX, maxY := 1.0, 1.0, 0.0, 0.0
	for _, q := range p {
		minX, minY, maxX, maxY = math.Min(minX, q.X), math.Min(minY, q.Y), math.Max(maxX, q.X), math.Max(maxY, q.Y)
	}
	x, y = int(minX*W)&^1, int(minY*H)&^1
	return x, y, (int(maxX*W) - x) &^ 1, (int(maxY*H) - y) &^ 1
}

// ffmpegFilter is the closest ffmpeg equivalent: drawbox fill over the
// octagon's box; crop + pixelize/boxblur + overlay for the others.
func ffmpegFilter(st maskspec.Style, cover float64) string {
	x, y, w, h := octBox(cover)
	switch st {
	case maskspec.StylePixelate:
		return fmt.Sprintf("split[a][b];[b]crop=%d:%d:%d:%d,pixelize=w=16:h=16[p];[a][p]overlay=%d:%d", w, h, x, y, x, y)
	case maskspec.StyleBlur:
		return fmt.Sprintf("split[a][b];[b]crop=%d:%d:%d:%d,boxblur=15:1[p];[a][p]overlay=%d:%d", w, h, x, y, x, y)
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
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-b:v", "4M", "-g", "60", "-f", "null", "-")
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

// pipelineCPU runs Velo's pipeline on the clip: GStreamer decode to I420 →
// mask → GStreamer x264 (same settings as ffmpeg's run), returns process CPU
// seconds per frame.
func pipelineCPU(clip string, st maskspec.Style, cover float64) (float64, error) {
	m, err := masking.NewMasker("bench", maskspec.FailDrop)
	if err != nil {
		return 0, err
	}
	m.SetSettle(0)
	var masks []maskspec.Mask
	if st != "" {
		masks = []maskspec.Mask{{Name: "octagon", Polygon: octagon(cover), Style: st, Block: 16, Strength: 15}}
	}
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Masks: masks}}); err != nil {
		return 0, err
	}
	m.SetView("", true)
	done := make(chan struct{})
	opened := false
	open := func(ctx context.Context) (masking.Source, error) {
		if opened {
			close(done) // the clip ended: stop
			<-ctx.Done()
			return nil, ctx.Err()
		}
		opened = true
		return masking.FileOpener(clip)(ctx)
	}
	sink := masking.NewLazyEncoder(masking.EncoderConfig{Camera: "bench", FPS: 30, BitrateKbps: 4000, GOP: 60})
	p, err := masking.NewPipeline(masking.PipelineConfig{Camera: "bench", Masker: m, Open: open, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c0 := cpuNow()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	<-done
	cancel()
	if err := <-errc; err != nil {
		return 0, err
	}
	cpu := cpuNow() - c0
	n := p.Stats().Encoded
	if n == 0 {
		return 0, errors.New("no frames")
	}
	return cpu / float64(n), nil
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
