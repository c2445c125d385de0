package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
)

// A real Prometheus (Debian's) scrapes velo fleet, which consumes a
// gateway's telemetry from a real Mosquitto: every panel of the Grafana
// dashboard has data, and the shipped alert rules (their `for:` shortened
// to 2 s) fire on an injected blank camera, a tamper event and an offline
// gateway.
func TestDashboardAndAlertsOnRealPrometheus(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Fatal("prometheus not installed (make deps installs it)")
	}
	m := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	f, addr := startFleet(t, m.URL(false), nil)
	p := newPublisher(t, m.URL(false))
	injectSite(t, p)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // events keep flowing: latency and rates have data
		defer close(done)
		for seq := uint64(100); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			p.pub("s1", "gw1", "events", seq, false, map[string]any{"kind": "config_applied", "event_time": time.Now()})
		}
	}()
	defer func() { close(stop); <-done }()
	testkit.WaitFor(t, 20*time.Second, "the injected site", func() bool { return f.State().Counts().Events >= 3 })

	prom := startPrometheus(t, addr)
	panels := dashboardQueries(t)
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range panels {
		for {
			n, err := promQuery(prom, q.expr)
			if err == nil && n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("panel %q: no data from %s (%v)", q.title, q.expr, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	want := map[string]string{"VeloCameraBlank": "cam-a", "VeloTamperSuspected": "cam-a", "VeloGatewayOffline": "gw2",
		"VeloAuditChainIncident": "gw1", "VeloClockUnsynced": "gw1"}
	testkit.WaitFor(t, 60*time.Second, "the alerts firing", func() bool {
		firing := firingAlerts(t, prom)
		for name, who := range want {
			if !strings.Contains(firing[name], who) {
				return false
			}
		}
		return true
	})
	if firing := firingAlerts(t, prom); strings.Contains(firing["VeloCameraBlank"], "cam-b") {
		t.Errorf("a streaming camera is alerted blank: %v", firing)
	}
	t.Logf("%d panels with data; alerts firing: %v", len(panels), firingAlerts(t, prom))
}

// injectSite publishes one gateway with a blank and a streaming camera,
// its stats, a tamper event and a rewound audit head, and an offline
// gateway.
func injectSite(t *testing.T, p *publisher) {
	since := time.Now().Add(-20 * time.Minute).UTC()
	p.pub("s1", "gw1", "status", 1, true, map[string]any{"state": "online", "outbox": map[string]any{"dropped": 0}})
	p.pub("s1", "gw1", "cameras/cam-a/state", 2, true, map[string]any{"status": "blank", "online": true, "since": since})
	p.pub("s1", "gw1", "cameras/cam-b/state", 3, true, map[string]any{"status": "streaming", "online": true, "approved": true})
	p.pub("s1", "gw2", "status", 1, true, map[string]any{"state": "offline", "reason": "connection lost"})
	p.pub("s1", "gw1", "events", 4, false, map[string]any{"kind": "view_mismatch", "camera": "cam-a", "event_time": time.Now()})
	p.pub("s1", "gw1", "events", 5, false, map[string]any{"kind": "video_lost", "camera": "cam-b", "event_time": time.Now()})
	p.pub("s1", "gw1", "events", 6, false, map[string]any{"kind": "audit_head", "audit_seq": 9, "audit_hash": hash1, "audit_key": keyA})
	p.pub("s1", "gw1", "events", 7, false, map[string]any{"kind": "audit_head", "audit_seq": 8, "audit_hash": hash2, "audit_key": keyA})
	p.pub("s1", "gw1", "stats", 8, false, map[string]any{"interval_s": 60, "uptime_s": 600,
		"host": map[string]any{"cpu_seconds": 30, "rss_bytes": 6e7, "outbox_depth": 2, "outbox_dropped": 0, "clock_synced": false},
		"cameras": []map[string]any{
			{"id": "cam-a", "status": "blank", "frames_in": 6000, "frames_out": 0, "dropped": 0, "blanked": 6000, "fps_in": 10, "fps_out": 0},
			{"id": "cam-b", "status": "streaming", "frames_in": 6000, "frames_out": 5990, "dropped": 10, "fps_in": 10, "fps_out": 10}}})
}

// startPrometheus runs Prometheus on loopback, scraping the fleet every
// second, with the shipped rules whose `for:` is shortened to 2 s.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile("../deploy/prometheus/velo-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	fast := regexp.MustCompile(`(?m)^(\s+for:) \S+$`).ReplaceAll(rules, []byte("$1 2s"))
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), fast, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\n"+
		"scrape_configs:\n  - job_name: velo-fleet\n    static_configs: [{targets: ['%s']}]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	base := "http://" + listen
	testkit.WaitFor(t, 60*time.Second, "prometheus ready", func() bool {
		_, err := promQuery(base, "up")
		return err == nil
	})
	return base
}

type panelQuery struct{ title, expr string }

// dashboardQueries are every panel's queries, the site variable set to
// all sites.
func dashboardQueries(t *testing.T) []panelQuery {
	raw, err := os.ReadFile("../deploy/grafana/velo-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("velo-fleet.json: %v", err)
	}
	var out []panelQuery
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, panelQuery{p.Title, strings.ReplaceAll(tg.Expr, "$site", ".*")})
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d panel queries", len(out))
	}
	return out
}

// promQuery runs an instant query and returns how many series it gave.
func promQuery(base, expr string) (int, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	resp, err := httpClient.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	return len(r.Data.Result), nil
}

// firingAlerts maps each firing alert to its labels (as text).
func firingAlerts(t *testing.T, base string) map[string]string {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	getJSON(t, base+"/api/v1/alerts", &r)
	out := map[string]string{}
	for _, a := range r.Data.Alerts {
		if a.State == "firing" {
			out[a.Labels["alertname"]] += fmt.Sprint(a.Labels) + " "
		}
	}
	return out
}
