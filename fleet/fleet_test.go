package fleet

import (
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
)

const (
	keyA  = "7696b40063b29040b92b0f7ac751fa14a12a421b632be0b90c6ea2e234afc13f"
	keyB  = "1111b40063b29040b92b0f7ac751fa14a12a421b632be0b90c6ea2e234afc13f"
	hash1 = "372e2dd9d72adcb624349f74b7400435642d15e831ccb0a903ac3a86d693fbd6"
	hash2 = "472e2dd9d72adcb624349f74b7400435642d15e831ccb0a903ac3a86d693fbd6"
)

// A real Mosquitto, a fleet with a shared subscription group, and a
// publisher speaking the gateways' contract: retained status and state
// published before the fleet starts still reach it, duplicates and stale
// messages are dropped by seq, and what needs attention is listed with
// since when, and exported as metrics.
func TestFleetKeepsStateFromMQTT(t *testing.T) {
	m := testkit.StartMosquitto(t, testkit.MosquittoOptions{})
	p := newPublisher(t, m.URL(false))
	since := time.Now().Add(-42 * time.Minute).UTC().Truncate(time.Second)
	p.pub("s1", "gw1", "status", 1, true, map[string]any{"state": "online", "outbox": map[string]any{"dropped": 0}})
	p.pub("s1", "gw1", "cameras/cam-ok/state", 2, true, map[string]any{"status": "streaming", "online": true, "approved": true})
	p.pub("s1", "gw1", "cameras/cam-blank/state", 3, true, map[string]any{"status": "blank", "online": true, "preset": "2", "since": since})
	p.pub("s2", "gw9", "status", 5, true, map[string]any{"state": "offline", "reason": "connection lost"})

	f, addr := startFleet(t, m.URL(false), func(c *Config) { c.ShareGroup = "ops" })
	testkit.WaitFor(t, 20*time.Second, "retained state", func() bool { _, c := f.State().Tracked(); return c == 2 })

	p.pub("s1", "gw1", "events", 10, false, map[string]any{"kind": "view_mismatch", "camera": "cam-blank", "event_time": time.Now()})
	p.pub("s1", "gw1", "events", 10, false, map[string]any{"kind": "view_mismatch", "camera": "cam-blank"}) // QoS 1 redelivery
	p.pub("s1", "gw1", "cameras/cam-ok/state", 1, true, map[string]any{"status": "blank"})                  // stale
	p.pub("s1", "gw1", "events", 11, false, map[string]any{"kind": "audit_head", "audit_seq": 40, "audit_hash": hash1, "audit_key": keyA})
	p.pub("s1", "gw1", "events", 12, false, map[string]any{"kind": "audit_head", "audit_seq": 39, "audit_hash": hash2, "audit_key": keyA})
	p.pub("s1", "gw1", "stats", 13, false, map[string]any{"interval_s": 60, "uptime_s": 100,
		"host":    map[string]any{"cpu_seconds": 12.5, "rss_bytes": 5e7, "outbox_depth": 3, "outbox_dropped": 0, "clock_synced": false},
		"cameras": []map[string]any{{"id": "cam-ok", "status": "streaming", "frames_in": 1000, "frames_out": 990, "fps_in": 10, "fps_out": 9.9}}})
	p.pub("s1", "gw1", "events", 14, false, map[string]any{"kind": "drift", "camera": "cam-ptz", "preset": "1"})
	testkit.WaitFor(t, 20*time.Second, "events and stats", func() bool { return f.State().Counts().Events == 4 && f.State().Counts().Messages >= 11 })

	c := f.State().Counts()
	if c.Duplicates != 2 {
		t.Errorf("duplicates dropped = %d, want 2 (a redelivered event, a stale state)", c.Duplicates)
	}
	var got []Finding
	getJSON(t, "http://"+addr+"/api/v1/attention", &got)
	want := map[string]bool{"s2/gw9//offline": false, "s1/gw1/cam-blank/blank": false, "s1/gw1/cam-blank/tamper": false,
		"s1/gw1//audit": false, "s1/gw1//clock": false, "s1/gw1/cam-ptz/drifting": false}
	for _, x := range got {
		k := x.Site + "/" + x.Gateway + "/" + x.Camera + "/" + x.State
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected finding %+v", x)
		}
		want[k] = true
		if k == "s1/gw1/cam-blank/blank" && !x.Since.Equal(since) {
			t.Errorf("blank since %v, want the state's since %v", x.Since, since)
		}
		if k == "s1/gw1//audit" && !strings.Contains(x.Detail, "rewound from seq 40 to 39") {
			t.Errorf("audit finding %q, want the rewind", x.Detail)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("finding %s missing from %+v", k, got)
		}
	}
	var blank []Finding
	getJSON(t, "http://"+addr+"/api/v1/attention?state=blank&site=s1", &blank)
	if len(blank) != 1 || blank[0].Camera != "cam-blank" {
		t.Errorf("filtered attention = %+v, want cam-blank only", blank)
	}

	metrics := getText(t, "http://"+addr+"/metrics")
	for _, line := range []string{
		`velo_fleet_camera_status{camera="cam-blank",gateway="gw1",site="s1",status="blank"} 1`,
		`velo_fleet_camera_status{camera="cam-ok",gateway="gw1",site="s1",status="streaming"} 1`,
		`velo_fleet_gateway_up{gateway="gw9",site="s2"} 0`,
		`velo_fleet_audit_incidents_total{gateway="gw1",site="s1"} 1`,
		`velo_fleet_audit_head_seq{gateway="gw1",site="s1"} 39`,
		`velo_fleet_camera_frames_in_total{camera="cam-ok",gateway="gw1",site="s1"} 1000`,
		`velo_fleet_gateway_clock_synced{gateway="gw1",site="s1"} 0`,
		`velo_fleet_duplicates_total 2`,
		`velo_fleet_mqtt_connected 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	// An empty retained state removes the camera and its series.
	p.raw("velo/s1/gw1/cameras/cam-ok/state", true, nil)
	testkit.WaitFor(t, 20*time.Second, "the camera removed", func() bool { _, c := f.State().Tracked(); return c == 2 })
	if strings.Contains(getText(t, "http://"+addr+"/metrics"), `camera="cam-ok"`) {
		t.Error("a removed camera still has series")
	}
}
