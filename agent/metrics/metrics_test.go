package metrics

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The SoC's zone is preferred, a board without zones has no temperature.
func TestBoardTemp(t *testing.T) {
	root := t.TempDir()
	if boardTemp(root) != nil {
		t.Error("a temperature without thermal zones")
	}
	zone := func(n, typ, milli string) {
		d := filepath.Join(root, "thermal_zone"+n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "type"), []byte(typ+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "temp"), []byte(milli+"\n"), 0o644)
	}
	zone("0", "gpu-thermal", "38000")
	if c := boardTemp(root); c == nil || *c != 38 {
		t.Errorf("only zone: %v", c)
	}
	zone("1", "cpu-thermal", "51349")
	if c := boardTemp(root); c == nil || *c != 51.3 {
		t.Errorf("cpu zone: %v", c)
	}
}

// /metrics: one series per camera and counter, the status one-hot over
// the six statuses, up only while streaming, the process collectors.
func TestHandlerFigures(t *testing.T) {
	snap := Snapshot{Gateway: Gateway{OutboxDepth: 3, OutboxDropped: 2, ClockSynced: true},
		Cameras: []Camera{{ID: "a", Status: "streaming", FramesIn: 100, FramesOut: 90, Dropped: 4, Blanked: 6, ViewMismatches: 1},
			{ID: "b", Status: "video-lost"}}}
	srv := httptest.NewServer(Handler(func() Snapshot { return snap }))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		`velo_camera_frames_in_total{camera="a"} 100`, `velo_camera_frames_out_total{camera="a"} 90`,
		`velo_camera_dropped_total{camera="a"} 4`, `velo_camera_blanked_total{camera="a"} 6`,
		`velo_camera_view_mismatches_total{camera="a"} 1`, `velo_camera_up{camera="a"} 1`, `velo_camera_up{camera="b"} 0`,
		`velo_camera_status{camera="b",status="video-lost"} 1`, `velo_camera_status{camera="b",status="streaming"} 0`,
		"velo_outbox_depth 3", "velo_outbox_dropped_total 2", "velo_clock_synced 1",
		"# TYPE velo_camera_frames_in_total counter", "process_cpu_seconds_total", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := strings.Count(body, "velo_camera_status{"); n != 2*len(Statuses) {
		t.Errorf("%d status series, want %d", n, 2*len(Statuses))
	}
}

// The process figures are read (this process uses some CPU and memory);
// the clock check answers without error on any Linux.
func TestProcessFigures(t *testing.T) {
	cpu, rss := Process()
	if cpu <= 0 || rss < 1<<20 {
		t.Errorf("cpu %v s, rss %d bytes", cpu, rss)
	}
	t.Logf("clock synced: %v", ClockSynced())
}
