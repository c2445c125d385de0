package agent

import (
	"context"
	"fmt"
	"math"
	"time"

	"velo/agent/camera"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/ptzlock"
	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/codec"
	"velo/masking/viewcheck"
	"velo/onvif"
)

// startLock starts the PTZ lock of a camera with approved presets; a fixed
// camera's one view is approved at once.
func (a *Agent) startLock(s *session) error {
	cam := s.w.cam
	hasPTZ := s.prof.PTZ != nil && s.client.HasService(onvif.NSPTZ)
	approved := approvedViews(cam, s.fixedAt)
	switch {
	case len(cam.Presets) > 0 && !hasPTZ:
		return fmt.Errorf("camera %q: presets configured but profile %q has no PTZ", cam.ID, s.prof.Token)
	case !hasPTZ || len(approved) == 0:
		// A fixed camera without PTZ, or with PTZ but no recorded position
		// yet (no reference: the view check withholds its video when
		// references are required): only the pixels are checked.
		s.masker.SetView("", true)
		a.update(cam.ID, func(st *CameraState) { st.Approved = true })
		return nil
	}
	lock, err := ptzlock.NewLock(ptzlock.LockConfig{Camera: cam.ID, Profile: s.prof.Token, Interval: time.Duration(cam.PTZLock.Interval),
		Preset: approved[0], Presets: approved, PTZConfig: s.prof.PTZ.Token, Now: a.opts.Clock.Now, Log: s.log},
		s.client, s.masker, func(ev event.Event) { a.lockEvent(cam.ID, ev) })
	if err != nil {
		return err
	}
	s.w.mu.Lock()
	s.w.lock = lock
	s.w.mu.Unlock()
	s.goStage("ptz lock", lock.Run)
	return nil
}

// lockEvent folds a PTZ lock event into the camera's state, then emits it.
func (a *Agent) lockEvent(id string, ev event.Event) {
	a.update(id, func(s *CameraState) {
		switch ev.Kind {
		case event.LimitsSet, event.LimitsFailed:
			return
		case event.Drift, event.TamperSuspected:
			t := ev.Time
			s.LastDrift = &t
		}
		s.Approved = ev.Kind == event.Locked || ev.Kind == event.SnapBack
		s.Preset = ev.Preset
		if ev.Position != nil && (s.Position == nil || movedBeyond(s.Position, ev.Position, positionDeadband)) {
			s.Position = ev.Position // within the deadband: unchanged, no retained write
		}
	})
	a.emit(ev)
}

// startPipeline starts capture → mask → encode into the relay.
func (a *Agent) startPipeline(s *session) error {
	cam := s.w.cam
	// Deadlines on every capture call; the stream re-checked before each
	// connection (credentials only to the camera, never in clear).
	cc := a.captureBounds(cam, camera.Capture(cam, s.uri))
	var from string
	cc.Codec, from = camera.StreamCodec(s.ctx, s.client, s.prof)
	s.log.Info().Str("codec", string(cc.Codec)).Str("from", from).Msg("profile codec")
	cc.OnPath = a.pathReporter(cam.ID, s)
	open, err := camera.Opener(cam, cc, func(r *camera.RefusedError) { a.streamRefused(s.w, r) })
	if err != nil {
		return err
	}
	a.mu.Lock()
	rel := a.run.rel
	out := a.cfg.Load().Outputs.Codec
	a.mu.Unlock()
	fps := cam.Encoder.FPS
	if fps == 0 {
		fps = camera.ProfileFPS(s.prof) // else the stream's, once opened
	}
	var dyn *anonymise.Stage
	var dynStage masking.FrameStage
	if cam.Dynamic != nil {
		// A detector that does not load stops this camera's video: never a
		// stream without the dynamic masks its config asks for.
		if dyn, err = anonymise.New(cam.Dynamic.Spec(cam)); err != nil {
			return err
		}
		dynStage = dyn
	}
	pl, err := masking.NewPipeline(masking.PipelineConfig{Camera: cam.ID, Masker: s.masker, Open: open, Dynamic: dynStage,
		Logf:      func(f string, args ...any) { s.log.Info().Msg(fmt.Sprintf(f, args...)) },
		LostAfter: time.Duration(cam.Capture.VideoLostAfter), OnVideo: func(lost bool, detail string) { a.videoEvent(cam.ID, lost, detail) },
		CallBound: callBound(cam),
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: cam.ID, FPS: fps, BitrateKbps: cam.Encoder.BitrateKbps,
			Codec: codec.Codec(out), Element: cam.Encoder.Element, Relay: rel, OnOpen: func() { a.refreshWorkerVideo(s.w) }})})
	if err != nil {
		if dyn != nil {
			dyn.Close()
		}
		return err
	}
	s.w.mu.Lock()
	s.w.pl, s.w.dyn = pl, dyn
	s.w.mu.Unlock()
	s.goStage("pipeline", func(ctx context.Context) error {
		if dyn != nil {
			defer dyn.Close()
		}
		return pl.Run(ctx)
	})
	return nil
}

// pathReporter logs every capture path and emits video_fallback when the
// path changes to one that is not the preferred one (not at every
// reconnect on the same path).
func (a *Agent) pathReporter(id string, s *session) func(masking.CapturePath) {
	var last string
	return func(p masking.CapturePath) {
		desc := p.String()
		s.log.Info().Str("video_path", desc).Msg("capture path")
		a.update(id, func(st *CameraState) {
			v := VideoState{}
			if st.Video != nil {
				v = *st.Video
			}
			v.Codec, v.Decoder, v.Backend, v.Fallback = string(p.Codec), p.Decoder, string(p.Backend), p.Fallback
			st.Video = &v
		})
		if desc == last {
			return
		}
		last = desc
		if p.Fallback != "" || p.Note != "" {
			a.emit(event.Event{Kind: event.VideoFallback, Camera: id, Detail: desc})
		}
	}
}

// captureBounds puts the camera's capture deadlines on cc, and the
// agent's count of hung calls (Health).
func (a *Agent) captureBounds(cam *config.CameraConfig, cc masking.CaptureConfig) masking.CaptureConfig {
	cc.Camera, cc.Stuck = cam.ID, a.stuck
	cc.OpenTimeout, cc.ReadTimeout = time.Duration(cam.Capture.OpenTimeout), time.Duration(cam.Capture.ReadTimeout)
	return cc
}

// callBound is the longest one step of the capture may take before the
// frame path counts as blocked: the longer deadline, with a margin for a
// loaded gateway.
func callBound(cam *config.CameraConfig) time.Duration {
	open, read := time.Duration(cam.Capture.OpenTimeout), time.Duration(cam.Capture.ReadTimeout)
	if open == 0 {
		open = masking.DefaultOpenTimeout
	}
	if read == 0 {
		read = masking.DefaultReadTimeout
	}
	return max(open, read) + 10*time.Second
}

// videoEvent shows a camera's video lost or restored in its state and
// emits the event.
func (a *Agent) videoEvent(id string, lost bool, detail string) {
	a.update(id, func(s *CameraState) { s.VideoLost = lost })
	kind := event.VideoRestored
	if lost {
		kind = event.VideoLost
	}
	a.emit(event.Event{Kind: kind, Camera: id, Detail: detail})
}

// startRecorder records the camera's masked stream from the relay, where
// configured; its segments are sealed by the retention loop.
func (a *Agent) startRecorder(s *session) error {
	cam := s.w.cam
	if !cam.Record.Enabled {
		return nil
	}
	a.mu.Lock()
	r := a.run
	a.mu.Unlock()
	rec, err := masking.NewRecorder(masking.RecorderConfig{Camera: cam.ID, Source: r.rel.ReadURL(cam.ID), Username: r.recorder[0], Password: r.recorder[1],
		Dir: a.cfg.Load().Outputs.RecordDir, SegmentLength: time.Duration(cam.Record.Segment),
		Logf: func(f string, args ...any) { s.log.Debug().Msg(fmt.Sprintf(f, args...)) }})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.recs[cam.ID] = true
	a.mu.Unlock()
	s.goStage("recorder", func(ctx context.Context) error {
		defer func() {
			a.mu.Lock()
			delete(a.recs, cam.ID)
			a.mu.Unlock()
		}()
		return rec.Run(ctx)
	})
	return nil
}

// approvedViews are the views the PTZ lock holds: the approved presets, or
// a fixed camera's view at the position recorded with its reference.
func approvedViews(cam *config.CameraConfig, fixedAt *viewcheck.Position) []ptzlock.ApprovedPreset {
	var approved []ptzlock.ApprovedPreset
	for _, p := range cam.Presets {
		approved = append(approved, ptzlock.ApprovedPreset{Token: p.Token, Pan: p.Position.Pan, Tilt: p.Position.Tilt, Zoom: p.Position.Zoom, Tolerance: p.Tolerance})
	}
	if len(cam.Presets) == 0 && fixedAt != nil {
		approved = append(approved, ptzlock.ApprovedPreset{Fixed: true, Pan: fixedAt.Pan, Tilt: fixedAt.Tilt, Zoom: fixedAt.Zoom, Tolerance: config.DefaultTolerance})
	}
	return approved
}

// positionDeadband: a camera's published position changes only when an
// axis moved more than this (generic spaces), so PTZ read-back jitter does
// not rewrite the retained state; a drift is far larger (tolerance 0.02 by
// default) and is an event of its own.
const positionDeadband = 0.005

func movedBeyond(old, cur *event.Position, band float64) bool {
	return math.Abs(old.Pan-cur.Pan) > band || math.Abs(old.Tilt-cur.Tilt) > band || math.Abs(old.Zoom-cur.Zoom) > band
}
