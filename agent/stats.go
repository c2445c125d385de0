package agent

import (
	"context"
	"time"

	"velo/agent/event"
	"velo/agent/metrics"
	"velo/masking/anonymise"
)

// camTotals are a camera's counters since the agent started: the frame
// counts of its pipelines that ended, and its view mismatches. A live
// pipeline's own counts are added when they are read.
type camTotals struct {
	in, out, dropped, blanked, mismatches uint64
	// last is what was last reported: a counter never goes back, even
	// in the moment a restarted worker's old pipeline is not folded yet.
	last [4]uint64
	// The frame rates over the last heartbeat (sampleRates), for the
	// console; the stats topic computes its own over its interval.
	rateIn, rateOut uint64
	rateAt          time.Time
	fpsIn, fpsOut   float64
}

// foldPipeline adds a worker's ending pipeline's counts to the camera's
// totals (w.mu held, so a reader never counts them twice).
func (a *Agent) foldPipeline(w *worker) {
	if w.pl == nil {
		return
	}
	st := w.pl.Stats()
	a.totalsMu.Lock()
	t := a.totalsLocked(w.cam.ID)
	t.in, t.out, t.dropped, t.blanked = t.in+st.In, t.out+st.Out, t.dropped+st.Dropped, t.blanked+st.Blanked
	a.totalsMu.Unlock()
}

func (a *Agent) totalsLocked(id string) *camTotals {
	t := a.totals[id]
	if t == nil {
		t = &camTotals{}
		a.totals[id] = t
	}
	return t
}

// countEvent counts what the figures count of an event (the funnel).
func (a *Agent) countEvent(ev event.Event) {
	if ev.Kind == event.ViewMismatch && ev.Camera != "" {
		a.totalsMu.Lock()
		a.totalsLocked(ev.Camera).mismatches++
		a.totalsMu.Unlock()
	}
}

// cameraFigures is a camera's counters now: its totals plus its running
// pipeline's counts.
func (a *Agent) cameraFigures(id string) metrics.Camera {
	a.mu.Lock()
	w := a.workers[id]
	c := metrics.Camera{ID: id, Status: "starting"}
	if s := a.states[id]; s != nil {
		c.Status = s.Status
	}
	a.mu.Unlock()
	if w != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.pl != nil {
			st := w.pl.Stats()
			c.FramesIn, c.FramesOut, c.Dropped, c.Blanked = st.In, st.Out, st.Dropped, st.Blanked
		}
		c.Dynamic = dynamicFigures(w.dyn)
	}
	a.totalsMu.Lock()
	defer a.totalsMu.Unlock()
	t := a.totalsLocked(id)
	c.FramesIn, c.FramesOut, c.Dropped, c.Blanked = c.FramesIn+t.in, c.FramesOut+t.out, c.Dropped+t.dropped, c.Blanked+t.blanked
	c.ViewMismatches = t.mismatches
	for i, v := range []*uint64{&c.FramesIn, &c.FramesOut, &c.Dropped, &c.Blanked} {
		*v = max(*v, t.last[i])
		t.last[i] = *v
	}
	return c
}

// Figures are the gateway's figures now (the stats payload without the
// frame rates, and /metrics): counters since the agent started, for the
// cameras of the config in force only (bounded label sets).
func (a *Agent) Figures() metrics.Snapshot {
	cpu, rss := metrics.Process()
	s := metrics.Snapshot{UptimeS: round1(time.Since(a.started).Seconds()),
		Gateway: metrics.Gateway{CPUSeconds: float64(int64(cpu*1000)) / 1000, RSSBytes: rss, TempC: metrics.BoardTemp(), ClockSynced: metrics.ClockSynced()}}
	a.mu.Lock()
	if a.run != nil && a.run.outbox != nil {
		st := a.run.outbox.Stats()
		s.Gateway.OutboxDepth, s.Gateway.OutboxDropped = st.Pending, st.Dropped
	}
	a.mu.Unlock()
	s.Cameras = []metrics.Camera{}
	for _, cam := range a.cfg.Load().Cameras {
		s.Cameras = append(s.Cameras, a.cameraFigures(cam.ID))
	}
	return s
}

// statsPublishLoop publishes the figures on the stats topic every
// telemetry.stats_interval (QoS 0, not retained), frame rates over the
// interval.
func (a *Agent) statsPublishLoop(ctx context.Context) {
	every := time.Duration(a.cfg.Load().Telemetry.StatsInterval)
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevAt := map[string]metrics.Camera{}, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, now := a.Figures(), time.Now()
		s.IntervalS = every.Seconds()
		dt := now.Sub(prevAt).Seconds()
		for i := range s.Cameras {
			c := &s.Cameras[i]
			if p, ok := prev[c.ID]; ok && dt > 0 {
				c.FPSIn, c.FPSOut = round1(float64(c.FramesIn-p.FramesIn)/dt), round1(float64(c.FramesOut-p.FramesOut)/dt)
			}
			prev[c.ID] = *c
		}
		prevAt = now
		if tel := a.telemetry(); tel != nil {
			tel.SetStats(s)
		}
	}
}

// metricsLoop serves /metrics on metrics.listen until ctx ends (off when
// the config says so).
func (a *Agent) metricsLoop(ctx context.Context) {
	if l := a.cfg.Load().MetricsListen(); l != "" {
		if err := metrics.Serve(ctx, l, a.Figures, a.log); err != nil {
			a.log.Error().Err(err).Str("listen", l).Msg("metrics: stopped serving")
		}
	}
}

// dynamicFigures are a dynamic masking stage's counters (nil: off).
func dynamicFigures(d *anonymise.Stage) *metrics.Dynamic {
	if d == nil {
		return nil
	}
	s := d.Stats()
	ms := func(v time.Duration) float64 { return float64(v.Microseconds()) / 1000 }
	return &metrics.Dynamic{Detections: s.Detections, TrackedBoxes: s.Tracked, ZoneFallbacks: s.Fallbacks, DetectMsP50: ms(s.DetectP50), DetectMsP99: ms(s.DetectP99)}
}

// sampleRates updates every camera's frame rates since the last sample
// (statsLoop's heartbeat).
func (a *Agent) sampleRates(now time.Time) {
	for _, cam := range a.cfg.Load().Cameras {
		c := a.cameraFigures(cam.ID)
		a.totalsMu.Lock()
		t := a.totalsLocked(cam.ID)
		if dt := now.Sub(t.rateAt).Seconds(); !t.rateAt.IsZero() && dt > 0 {
			t.fpsIn, t.fpsOut = round1(float64(c.FramesIn-t.rateIn)/dt), round1(float64(c.FramesOut-t.rateOut)/dt)
		}
		t.rateIn, t.rateOut, t.rateAt = c.FramesIn, c.FramesOut, now
		a.totalsMu.Unlock()
	}
}

// cameraRates are a camera's frame rates in and out at the last sample.
func (a *Agent) cameraRates(id string) (in, out float64) {
	a.totalsMu.Lock()
	defer a.totalsMu.Unlock()
	t := a.totalsLocked(id)
	return t.fpsIn, t.fpsOut
}
