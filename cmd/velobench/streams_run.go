package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"velo/onvif/camsim"
)

// benchSite is `velo run`'s config for the streams figure: site "demo"
// so that the demo's admin credential logs in to the embedded broker.
func benchSite(sim *camsim.Sim, n int, sc streamsConfig, broker, rtsp, metrics string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "site: {id: demo, name: Bench, controller: Bench, purposes: [benchmark]}\ngateway: bench\n")
	fmt.Fprintf(&b, "verify: {require_reference: false}\nstate_dir: state\nbroker: {embedded_listen: %q}\noutputs: {rtsp_listen: %q}\n", broker, rtsp)
	fmt.Fprintf(&b, "metrics: {listen: %q}\n", metrics)
	var ids []string
	for _, c := range sim.Cameras()[:n] {
		ids = append(ids, c.Config().ID)
	}
	fmt.Fprintf(&b, "operators:\n  - {name: admin, password_file: admin.cred, roles: [admin], cameras: [%s], combined_roles_reason: benchmark}\ncameras:\n", strings.Join(ids, ", "))
	poly := func(r [4]int) string {
		var pts []string
		for _, p := range rectPoly(r) {
			pts = append(pts, fmt.Sprintf("{x: %.6f, y: %.6f}", p.X, p.Y))
		}
		return "[" + strings.Join(pts, ", ") + "]"
	}
	for _, c := range sim.Cameras()[:n] {
		cc := c.Config()
		fmt.Fprintf(&b, "  - id: %s\n    purpose: benchmark\n    location: bench\n    approval: {by: Bench, date: 2026-11-01, document: BENCH-1}\n", cc.ID)
		fmt.Fprintf(&b, "    match: {serial: %s}\n    xaddr: %s\n    username: %s\n    password_file: camera.password\n", cc.Serial, c.XAddr(), simUser)
		fmt.Fprintf(&b, "    encoder: {bitrate_kbps: %d, fps: %d}\n    masks:\n", sc.kbps, sc.fps)
		fmt.Fprintf(&b, "      - {name: fill, style: fill, polygon: %s}\n      - {name: pixelate, style: pixelate, block: 40, polygon: %s}\n", poly(streamFill), poly(streamPixelate))
	}
	return b.String()
}

// runVeloStreams runs `velo run` on n cameras and measures it for window
// after the warm-up; onRSS (if set) gets the RSS every second.
func runVeloStreams(dir, bin string, sim *camsim.Sim, n int, sc streamsConfig, window time.Duration, onRSS func(float64)) (streamRun, error) {
	d, _ := filepath.Abs(filepath.Join(dir, fmt.Sprintf("streams-velo-%d", n)))
	_ = os.RemoveAll(d)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return streamRun{}, err
	}
	broker, metrics := freeLoopback(), freeLoopback()
	cred, err := os.ReadFile("deploy/demo/admin.cred")
	if err != nil {
		return streamRun{}, fmt.Errorf("run from the repository root: %w", err)
	}
	for name, data := range map[string]string{"admin.cred": string(cred), "camera.password": simPass + "\n", "site.yaml": benchSite(sim, n, sc, broker, freeLoopback(), metrics)} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o600); err != nil {
			return streamRun{}, err
		}
	}
	site := filepath.Join(d, "site.yaml")
	out, err := exec.Command(bin, "passwd", "--config", site, "--operator", "admin", "--password-file", "deploy/demo/admin.password", "--stream-password").Output()
	if err != nil {
		return streamRun{}, fmt.Errorf("velo passwd --stream-password: %w", err)
	}
	logf, err := os.Create(filepath.Join(d, "velo.log"))
	if err != nil {
		return streamRun{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", site)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), sc.env...)
	if err := cmd.Start(); err != nil {
		return streamRun{}, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	st, err := watchStates(broker, strings.TrimSpace(string(out)), metrics)
	if err != nil {
		return streamRun{}, fmt.Errorf("velo run (log: %s): %w", logf.Name(), err)
	}
	defer st.close()
	return measure(n, sc.warmup, window, []int{cmd.Process.Pid}, st.fps, onRSS)
}

// measure samples the CPU of pids over window (after warmup) and divides
// it by the frames rate() says went out.
func measure(n int, warmup, window time.Duration, pids []int, rate func(reset bool) float64, onRSS func(float64)) (streamRun, error) {
	time.Sleep(warmup)
	all := func() (usage, error) {
		var t usage
		for _, pid := range pids {
			u, err := procUsage(pid)
			if err != nil {
				return usage{}, err
			}
			t = t.add(u)
		}
		return t, nil
	}
	u0, err := all()
	if err != nil {
		return streamRun{}, err
	}
	rate(true)
	t0 := time.Now()
	var rss float64
	sampleWhile(window, func() {
		if u, err := all(); err == nil {
			rss = u.rssMB
			if onRSS != nil {
				onRSS(u.rssMB)
			}
		}
	})
	u1, err := all()
	if err != nil {
		return streamRun{}, err
	}
	fps := rate(false)
	el := time.Since(t0).Seconds()
	if fps <= 0 {
		return streamRun{n: n, rssMB: rss}, fmt.Errorf("no frames went out in %.0f s", el)
	}
	frames, cpu := fps*el, u1.cpu-u0.cpu
	return streamRun{cpuPerFrame: cpu / frames, fps: fps, rssMB: rss, n: n,
		sysShare: (u1.sys - u0.sys) / cpu, switchesPerFrame: (u1.switches - u0.switches) / frames}, nil
}

// stateWatch counts the frames velo sent out, from its Prometheus
// endpoint (velo_camera_frames_out_total, summed over the cameras), read
// at the start and the end of the window; the MQTT login only waits for
// velo to be up. (The state telemetry no longer carries frame rates and
// an operator may not read the stats topic.)
type stateWatch struct {
	c       mqtt.Client
	metrics string // http://host:port/metrics
	out0    float64
	at0     time.Time
}

func watchStates(broker, streamPass, metrics string) (*stateWatch, error) {
	w := &stateWatch{metrics: "http://" + metrics + "/metrics"}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("velobench").SetUsername("admin").SetPassword(streamPass)
	w.c = mqtt.NewClient(opts)
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok := w.c.Connect()
		if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("MQTT login to %s: %v", broker, tok.Error())
		}
		time.Sleep(500 * time.Millisecond)
	}
	return w, nil
}

// framesOut sums velo_camera_frames_out_total over the cameras.
func (w *stateWatch) framesOut() (float64, error) {
	resp, err := http.Get(w.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "velo_camera_frames_out_total{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q", w.metrics, line)
			}
			n += v
		}
	}
	return n, sc.Err()
}

// fps returns the frames sent out per second, all cameras, since the last
// reset.
func (w *stateWatch) fps(reset bool) float64 {
	n, err := w.framesOut()
	if err != nil {
		fmt.Fprintln(os.Stderr, "velobench:", err)
		return 0
	}
	if reset {
		w.out0, w.at0 = n, time.Now()
		return 0
	}
	return (n - w.out0) / time.Since(w.at0).Seconds()
}

func (w *stateWatch) close() { w.c.Disconnect(100) }

// runFFmpegStreams runs n ffmpeg commands doing what velo run does.
func runFFmpegStreams(dir string, sim *camsim.Sim, n int, sc streamsConfig) (streamRun, error) {
	d, _ := filepath.Abs(filepath.Join(dir, fmt.Sprintf("streams-ffmpeg-%d", n)))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return streamRun{}, err
	}
	var pids []int
	var counters []*frameCounter
	for i, c := range sim.Cameras()[:n] {
		// The camera's credentials go in a 0600 ffconcat file, not argv.
		in := filepath.Join(d, fmt.Sprintf("cam%d.ffconcat", i))
		url := strings.Replace(c.RTSPURL("main"), "rtsp://", "rtsp://"+simUser+":"+simPass+"@", 1)
		if err := os.WriteFile(in, []byte("ffconcat version 1.0\nfile '"+url+"'\noption rtsp_transport tcp\n"), 0o600); err != nil {
			return streamRun{}, err
		}
		args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-progress", "pipe:1", "-stats_period", "1", "-f", "concat", "-safe", "0", "-protocol_whitelist", "file,rtsp,rtp,tcp,udp", "-i", in,
			"-filter_complex", streamsFilter()}
		args = append(args, x264Args(sc.kbps, 2*sc.fps)...)
		args = append(args, "-f", "null", "-")
		cmd := exec.Command("ffmpeg", args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return streamRun{}, err
		}
		if err := cmd.Start(); err != nil {
			return streamRun{}, err
		}
		defer func() { _ = cmd.Process.Signal(syscall.SIGINT); _ = cmd.Wait() }()
		fc := &frameCounter{}
		go fc.read(bufio.NewScanner(stdout))
		pids, counters = append(pids, cmd.Process.Pid), append(counters, fc)
	}
	var f0 int
	var t0 time.Time
	rate := func(reset bool) float64 {
		total := 0
		for _, c := range counters {
			total += c.get()
		}
		if reset {
			f0, t0 = total, time.Now()
			return 0
		}
		return float64(total-f0) / time.Since(t0).Seconds()
	}
	return measure(n, sc.warmup, sc.measure, pids, rate, nil)
}
