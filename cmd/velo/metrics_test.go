package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"velo/onvif/camsim"
)

// A real Prometheus (Debian's package) scrapes a real `velo run` on
// loopback: the camera's counters grow, it is up and streaming, the
// outbox and clock figures are there, the process collectors too, and
// no secret is in what /metrics serves.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (Debian package prometheus; deploy/deps.sh installs it)")
	}
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "mc", Address: "127.0.98.31", Username: "op", Password: pw, Serial: "SN-MC",
		Scene: "badge", FPS: 10, Width: 320, Height: 180})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cam.pw"), []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr, promAddr := freeAddr(t), freeAddr(t)
	site := fmt.Sprintf(`site: {id: s, name: S, controller: C, purposes: [p]}
gateway: g
verify: {require_reference: false} # this test is not about view verification
state_dir: state
broker: {embedded_listen: "%s"}
outputs: {rtsp_listen: "%s"}
metrics: {listen: "%s"}
cameras:
  - id: mc
    purpose: corridor
    approval: {by: A, date: 2026-01-01, document: D}
    match: {serial: SN-MC}
    xaddr: %s
    username: op
    password_file: cam.pw
`, freeAddr(t), freeAddr(t), metricsAddr, sim.Camera("mc").XAddr())
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	velo := exec.Command(os.Args[0], "run", "--config", filepath.Join(dir, "site.yaml"))
	velo.Env = append(os.Environ(), "VELO_CLI_CHILD=1")
	var logs lockedBuf
	velo.Stdout, velo.Stderr = &logs, &logs
	if err := velo.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = velo.Process.Signal(syscall.SIGTERM); _ = velo.Wait() }()

	promConf := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: velo\n    static_configs: [{targets: [%q]}]\n", metricsAddr)
	if err := os.WriteFile(promConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(promBin, "--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	var promLogs lockedBuf
	prom.Stdout, prom.Stderr = &promLogs, &promLogs
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prom.Process.Kill(); _ = prom.Wait() }()

	for _, q := range []string{`velo_camera_up{camera="mc"} == 1`, `velo_camera_status{camera="mc",status="streaming"} == 1`,
		`velo_camera_frames_in_total{camera="mc"} > 0`, `velo_camera_frames_out_total{camera="mc"} > 0`,
		`velo_outbox_depth >= 0`, `velo_clock_synced >= 0`, `velo_camera_view_mismatches_total{camera="mc"} == 0`,
		`process_resident_memory_bytes{job="velo"} > 0`, `go_goroutines{job="velo"} > 0`} {
		waitQuery(t, promAddr, q, &logs, &promLogs)
	}
	// What /metrics serves: bounded labels, no secret.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"velo_camera_blanked_total{camera=\"mc\"}", "velo_camera_dropped_total{camera=\"mc\"}",
		"velo_outbox_dropped_total", `velo_camera_status{camera="mc",status="offline"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), pw) || strings.Contains(logs.String(), pw) {
		t.Error("a secret in /metrics or the log")
	}
}

// waitQuery waits until the Prometheus query q returns a series.
func waitQuery(t *testing.T, promAddr, q string, logs ...*lockedBuf) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			last = err.Error()
			continue
		}
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err == nil && r.Status == "success" && len(r.Data.Result) > 0 {
			return
		}
		last = fmt.Sprintf("%s %v", r.Status, err)
	}
	for _, l := range logs {
		t.Log(l.String())
	}
	t.Fatalf("Prometheus query %s: no result (%s)", q, last)
}
