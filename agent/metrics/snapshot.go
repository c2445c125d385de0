// Package metrics is the gateway's figures: the snapshot published on the
// non-retained stats topic (docs/mqtt.md, docs/schemas/stats.schema.json)
// and the same figures served to Prometheus on /metrics
// (prometheus/client_golang), with the process's CPU, memory, the board's
// temperature where it has a sensor and whether the kernel clock is
// synchronised. Camera labels come from the config only, so every label
// set is bounded; nothing here carries a secret.
package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Snapshot is the stats payload (without the envelope).
type Snapshot struct {
	IntervalS float64  `json:"interval_s"`
	UptimeS   float64  `json:"uptime_s"`
	Gateway   Gateway  `json:"host"` // not "gateway": the envelope's gateway name
	Cameras   []Camera `json:"cameras"`
}

// Gateway is the process's and the board's figures.
type Gateway struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSSBytes   uint64  `json:"rss_bytes"`
	// TempC is absent when the board exposes no thermal zone.
	TempC         *float64 `json:"temp_c,omitempty"`
	OutboxDepth   int      `json:"outbox_depth"`
	OutboxDropped uint64   `json:"outbox_dropped"`
	ClockSynced   bool     `json:"clock_synced"`
}

// Camera is one camera's figures: counters cumulative since the agent
// started, frame rates over the last interval.
type Camera struct {
	ID             string  `json:"id"`
	Status         string  `json:"status"`
	FramesIn       uint64  `json:"frames_in"`
	FramesOut      uint64  `json:"frames_out"`
	Dropped        uint64  `json:"dropped"`
	Blanked        uint64  `json:"blanked"`
	ViewMismatches uint64  `json:"view_mismatches"`
	FPSIn          float64 `json:"fps_in"`
	FPSOut         float64 `json:"fps_out"`
	// Dynamic: the counters of dynamic masking, where it is on.
	Dynamic *Dynamic `json:"dynamic,omitempty"`
}

// Dynamic counts dynamic masking (masking/anonymise) since the camera's
// pipeline started; the detector times are over its recent detections.
type Dynamic struct {
	Detections    uint64  `json:"detections"`
	TrackedBoxes  uint64  `json:"tracked_boxes"`
	ZoneFallbacks uint64  `json:"zone_fallbacks"`
	DetectMsP50   float64 `json:"detector_ms_p50"`
	DetectMsP99   float64 `json:"detector_ms_p99"`
}

// Statuses are the camera statuses (the state schema's enum): the label
// values of velo_camera_status.
var Statuses = []string{"starting", "streaming", "blank", "video-lost", "offline", "scheduled-off"}

// Process reads this process's CPU time (user + system, getrusage) and
// resident memory (/proc/self/statm).
func Process() (cpuSeconds float64, rssBytes uint64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpuSeconds = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rssBytes = pages * uint64(os.Getpagesize())
		}
	}
	return cpuSeconds, rssBytes
}

// BoardTemp is the SoC's temperature in °C from the kernel's thermal
// zones (/sys/class/thermal): the zone whose type names the CPU or SoC,
// else the first; nil when the board exposes none (most VMs).
func BoardTemp() *float64 { return boardTemp("/sys/class/thermal") }

func boardTemp(root string) *float64 {
	zones, _ := filepath.Glob(filepath.Join(root, "thermal_zone*"))
	var first *float64
	for _, z := range zones {
		raw, err := os.ReadFile(filepath.Join(z, "temp"))
		if err != nil {
			continue
		}
		milli, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		if err != nil {
			continue
		}
		c := float64(int64(milli/100+0.5)) / 10 // millidegrees, one decimal
		typ, _ := os.ReadFile(filepath.Join(z, "type"))
		t := bytes.ToLower(typ)
		if bytes.Contains(t, []byte("cpu")) || bytes.Contains(t, []byte("soc")) {
			return &c
		}
		if first == nil {
			first = &c
		}
	}
	return first
}

// ClockSynced reports whether the kernel's clock is synchronised by NTP:
// adjtimex(2) (golang.org/x/sys/unix Adjtimex) says the state is not
// TIME_ERROR and STA_UNSYNC is clear. timesyncd, chrony and ntpd all
// clear it once synchronised; no D-Bus (timedatectl) is needed.
func ClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
