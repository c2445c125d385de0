package fleet

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names and labels (docs/fleet.md lists them). Series are made at
// scrape time from the state, so a removed camera's series go with it, and
// their number is bounded by limits.max_gateways and limits.max_cameras.
var (
	gwLabels  = []string{"site", "gateway"}
	camLabels = []string{"site", "gateway", "camera"}

	descGatewayUp       = prometheus.NewDesc("velo_fleet_gateway_up", "1 while the gateway's retained status is online, 0 when offline (LWT or shutdown).", gwLabels, nil)
	descGatewaySince    = prometheus.NewDesc("velo_fleet_gateway_status_since_timestamp_seconds", "When the gateway's status last changed (as the fleet saw it).", gwLabels, nil)
	descGatewaySeen     = prometheus.NewDesc("velo_fleet_gateway_last_seen_timestamp_seconds", "When the fleet last accepted a message from the gateway.", gwLabels, nil)
	descOutboxDepth     = prometheus.NewDesc("velo_fleet_gateway_outbox_depth", "Messages saved in the gateway's outbox, not yet acknowledged by the broker (stats).", gwLabels, nil)
	descOutboxDropped   = prometheus.NewDesc("velo_fleet_gateway_outbox_dropped_total", "Messages the gateway's outbox dropped at its byte cap (oldest first).", gwLabels, nil)
	descClockSynced     = prometheus.NewDesc("velo_fleet_gateway_clock_synced", "1 when the gateway reports its clock synchronised (stats).", gwLabels, nil)
	descCPU             = prometheus.NewDesc("velo_fleet_gateway_cpu_seconds_total", "CPU time of velo on the gateway (stats).", gwLabels, nil)
	descRSS             = prometheus.NewDesc("velo_fleet_gateway_rss_bytes", "Resident memory of velo on the gateway (stats).", gwLabels, nil)
	descTemp            = prometheus.NewDesc("velo_fleet_gateway_temperature_celsius", "Board temperature where the gateway exposes one (stats).", gwLabels, nil)
	descUptime          = prometheus.NewDesc("velo_fleet_gateway_uptime_seconds", "velo's uptime on the gateway (stats).", gwLabels, nil)
	descSeqResets       = prometheus.NewDesc("velo_fleet_gateway_seq_resets_total", "Times the gateway's seq started again from below the last one with a new birth (state directory lost or reinstalled).", gwLabels, nil)
	descGWEvents        = prometheus.NewDesc("velo_fleet_gateway_events_total", "Events accepted from the gateway after dedupe by seq.", gwLabels, nil)
	descAuditSeq        = prometheus.NewDesc("velo_fleet_audit_head_seq", "audit_seq of the gateway's last audit head.", gwLabels, nil)
	descAuditAt         = prometheus.NewDesc("velo_fleet_audit_head_timestamp_seconds", "When the gateway's last audit head arrived.", gwLabels, nil)
	descAuditIncidents  = prometheus.NewDesc("velo_fleet_audit_incidents_total", "Audit chain incidents: a head rewound (lower audit_seq), forked (same seq, other hash) or signed by another key.", gwLabels, nil)
	descAuditIncidentAt = prometheus.NewDesc("velo_fleet_audit_incident_timestamp_seconds", "When the gateway's last audit chain incident was seen.", gwLabels, nil)

	descCamStatus    = prometheus.NewDesc("velo_fleet_camera_status", "1 for the camera's current status (starting, streaming, blank, video-lost, offline, scheduled-off), 0 for the others.", append(camLabels, "status"), nil)
	descCamSince     = prometheus.NewDesc("velo_fleet_camera_status_since_timestamp_seconds", "When the camera's status last changed (the state's since, else first seen).", camLabels, nil)
	descCamApproved  = prometheus.NewDesc("velo_fleet_camera_approved", "1 when the camera is confirmed on an approved view.", camLabels, nil)
	descCamTampers   = prometheus.NewDesc("velo_fleet_camera_tamper_events_total", "Tamper-like events (drift, tamper_suspected, position_unknown, view_mismatch, camera_masks_*).", camLabels, nil)
	descCamTamperAt  = prometheus.NewDesc("velo_fleet_camera_last_tamper_timestamp_seconds", "When the camera's last tamper-like event arrived.", camLabels, nil)
	descCamVideoLost = prometheus.NewDesc("velo_fleet_camera_video_lost_total", "video_lost events of the camera.", camLabels, nil)
	descFramesIn     = prometheus.NewDesc("velo_fleet_camera_frames_in_total", "Frames captured (stats).", camLabels, nil)
	descFramesOut    = prometheus.NewDesc("velo_fleet_camera_frames_out_total", "Masked frames sent out (stats).", camLabels, nil)
	descDropped      = prometheus.NewDesc("velo_fleet_camera_dropped_total", "Frames dropped by the fail-closed masker (stats).", camLabels, nil)
	descBlanked      = prometheus.NewDesc("velo_fleet_camera_blanked_total", "Frames blanked (stats).", camLabels, nil)
	descMismatches   = prometheus.NewDesc("velo_fleet_camera_view_mismatches_total", "Frames that failed the view check (stats).", camLabels, nil)
	descFPSIn        = prometheus.NewDesc("velo_fleet_camera_fps_in", "Frames per second captured (stats).", camLabels, nil)
	descFPSOut       = prometheus.NewDesc("velo_fleet_camera_fps_out", "Frames per second sent out (stats).", camLabels, nil)

	descMessages   = prometheus.NewDesc("velo_fleet_messages_total", "MQTT messages the fleet received.", nil, nil)
	descDuplicates = prometheus.NewDesc("velo_fleet_duplicates_total", "Messages dropped because their seq was not above the last of their topic (QoS 1 redelivery, stale).", nil, nil)
	descInvalid    = prometheus.NewDesc("velo_fleet_invalid_total", "Messages dropped: a topic, JSON or envelope the fleet cannot use.", nil, nil)
	descRefused    = prometheus.NewDesc("velo_fleet_refused_total", "Gateways or cameras not tracked because a limit was reached: max_gateways (gateway), max_cameras (camera), max_cameras_per_gateway (gateway_camera), max_sites_per_gateway (gateway_site).", []string{"what"}, nil)
	descTracked    = prometheus.NewDesc("velo_fleet_tracked", "Gateways and cameras tracked.", []string{"what"}, nil)
)

// Collector exports the state as Prometheus metrics.
type Collector struct{ s *State }

// NewCollector makes the collector of s.
func NewCollector(s *State) *Collector { return &Collector{s: s} }

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGatewayUp, descGatewaySince, descGatewaySeen, descOutboxDepth, descOutboxDropped,
		descClockSynced, descCPU, descRSS, descTemp, descUptime, descGWEvents, descSeqResets, descAuditSeq, descAuditAt, descAuditIncidents,
		descAuditIncidentAt, descCamStatus, descCamSince, descCamApproved, descCamTampers, descCamTamperAt, descCamVideoLost,
		descFramesIn, descFramesOut, descDropped, descBlanked, descMismatches, descFPSIn, descFPSOut,
		descMessages, descDuplicates, descInvalid, descRefused, descTracked} {
		ch <- d
	}
	c.s.hist.Describe(ch)
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.hist.Collect(ch)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.gateways {
		collectGateway(ch, g)
		for _, cam := range g.cams {
			collectCamera(ch, g, cam)
		}
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	counter(descMessages, s.counts.Messages)
	counter(descDuplicates, s.counts.Duplicates)
	counter(descInvalid, s.counts.Invalid)
	counter(descRefused, s.counts.RefusedGW, "gateway")
	counter(descRefused, s.counts.RefusedCam, "camera")
	counter(descRefused, s.counts.RefusedGWCam, "gateway_camera")
	counter(descRefused, s.counts.RefusedGWSite, "gateway_site")
	ch <- prometheus.MustNewConstMetric(descTracked, prometheus.GaugeValue, float64(len(s.gateways)), "gateway")
	ch <- prometheus.MustNewConstMetric(descTracked, prometheus.GaugeValue, float64(s.cameras), "camera")
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func collectGateway(ch chan<- prometheus.Metric, g *gateway) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, g.site, g.name)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, g.site, g.name)
	}
	if g.status != "" {
		gauge(descGatewayUp, b2f(g.status == "online"))
	}
	gauge(descGatewaySince, unix(g.since))
	gauge(descGatewaySeen, unix(g.lastSeen))
	counter(descGWEvents, float64(g.events))
	counter(descSeqResets, float64(g.resets))
	counter(descOutboxDropped, float64(g.dropped()))
	counter(descAuditIncidents, float64(g.audit.incidents))
	if !g.audit.at.IsZero() {
		gauge(descAuditSeq, float64(g.audit.seq))
		gauge(descAuditAt, unix(g.audit.at))
	}
	if g.audit.incidents > 0 {
		gauge(descAuditIncidentAt, unix(g.audit.lastIncident))
	}
	if st := g.stats; st != nil {
		gauge(descOutboxDepth, st.OutboxDepth)
		gauge(descClockSynced, b2f(st.ClockSynced))
		counter(descCPU, st.CPUSeconds)
		gauge(descRSS, st.RSSBytes)
		gauge(descUptime, st.UptimeS)
		if st.TempC != nil {
			gauge(descTemp, *st.TempC)
		}
	}
}

func collectCamera(ch chan<- prometheus.Metric, g *gateway, c *camera) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, g.site, g.name, c.id)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, g.site, g.name, c.id)
	}
	if c.status != "" {
		for _, st := range cameraStatuses {
			ch <- prometheus.MustNewConstMetric(descCamStatus, prometheus.GaugeValue, b2f(c.status == st), g.site, g.name, c.id, st)
		}
		gauge(descCamSince, unix(c.since))
		gauge(descCamApproved, b2f(c.approved))
	}
	counter(descCamTampers, float64(c.tampers))
	counter(descCamVideoLost, float64(c.videoLost))
	if c.tampers > 0 {
		gauge(descCamTamperAt, unix(c.lastTamper))
	}
	if st := c.stats; st != nil {
		counter(descFramesIn, st.FramesIn)
		counter(descFramesOut, st.FramesOut)
		counter(descDropped, st.Dropped)
		counter(descBlanked, st.Blanked)
		counter(descMismatches, st.ViewMismatches)
		gauge(descFPSIn, st.FPSIn)
		gauge(descFPSOut, st.FPSOut)
	}
}
