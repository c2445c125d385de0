package agent

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"velo/agent/camera"
	"velo/agent/config"
	"velo/agent/event"
	"velo/agent/ptzlock"
	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
	"velo/masking/viewcheck"
	"velo/onvif"
)

// worker supervises one camera: a connection at a time, restarted with
// jittered backoff, stopped by cancel (done is closed when it has).
type worker struct {
	cam    *config.CameraConfig
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	lock *ptzlock.Lock
	pl   *masking.Pipeline
	dyn  *anonymise.Stage // dynamic masking, or nil
	// refusal is the last stream refusal reported, and when: the same one
	// is reported again only after refusalRepeat, however often the
	// capture reconnects.
	refusal   string
	refusalAt time.Time
}

// refusalRepeat is how often one unchanged stream refusal is reported.
const refusalRepeat = 10 * time.Minute

// streamRefused reports a stream refusal, unless it is the one reported
// less than refusalRepeat ago (a hostile endpoint cannot fill the audit
// log by making the capture reconnect).
func (a *Agent) streamRefused(w *worker, r *camera.RefusedError) {
	now := a.opts.Clock.Now()
	w.mu.Lock()
	repeat := w.refusal == r.Error() && now.Sub(w.refusalAt) < refusalRepeat
	if !repeat {
		w.refusal, w.refusalAt = r.Error(), now
	}
	w.mu.Unlock()
	if !repeat {
		a.emit(r.Event())
	}
}

// session is one connection to a camera and the stages it runs; the
// stages run under group and any failure ends them all.
type session struct {
	w      *worker
	log    zerolog.Logger
	client *onvif.Client
	uri    string
	prof   *onvif.Profile
	masker *masking.Masker

	// fixedAt: a fixed view's recorded PTZ position (from its reference),
	// where a camera with PTZ configured as fixed is held.
	fixedAt *viewcheck.Position
	// closers run once every stage has ended.
	closers []func()

	ctx    context.Context
	cancel context.CancelFunc
	group  sync.WaitGroup
	errc   chan error
}

// startWorkerLocked starts a camera's supervisor (a.mu held, Run running).
func (a *Agent) startWorkerLocked(cam *config.CameraConfig) {
	ctx, cancel := context.WithCancel(a.run.ctx)
	w := &worker{cam: cam, cancel: cancel, done: make(chan struct{})}
	a.workers[cam.ID] = w
	a.run.camWG.Go(func() {
		defer close(w.done)
		a.update(cam.ID, func(s *CameraState) { s.Stream = a.StreamURL(cam.ID) })
		a.superviseCamera(ctx, w)
	})
}

// stopWorker stops a camera's supervisor and waits for it.
func (a *Agent) stopWorker(id string) {
	a.mu.Lock()
	w := a.workers[id]
	delete(a.workers, id)
	a.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// superviseCamera restarts a camera's connection with jittered backoff
// until ctx ends; outside its schedule the camera is not read at all.
func (a *Agent) superviseCamera(ctx context.Context, w *worker) {
	log := a.log.With().Str("camera", w.cam.ID).Logger()
	if !a.waitViewsApproved(ctx, w.cam.ID) { // ER-4.7, at start
		return
	}
	backoff := time.Second
	for ctx.Err() == nil {
		if !a.waitSchedule(ctx, w.cam) {
			return
		}
		start := time.Now()
		err, scheduledOff := a.runScheduled(ctx, w, log)
		if ctx.Err() != nil {
			return
		}
		if scheduledOff {
			continue // not a failure
		}
		a.cameraFailed(w.cam.ID, err)
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		d := backoff/2 + mrand.N(backoff/2+1)
		log.Error().Err(err).Dur("retry_in", d).Msg("camera stopped")
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// runScheduled runs one connection and stops it when the camera's hours
// end (G-4.3); scheduledOff says that is why it stopped.
func (a *Agent) runScheduled(ctx context.Context, w *worker, log zerolog.Logger) (err error, scheduledOff bool) {
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	off := make(chan struct{})
	go func() {
		t := time.NewTicker(a.opts.ScheduleTick)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if !a.scheduleActive(w.cam.ID) {
					close(off)
					stopRun()
					return
				}
			}
		}
	}()
	err = a.runCamera(runCtx, w, log)
	select {
	case <-off:
		return err, true
	default:
		return err, false
	}
}

func (a *Agent) cameraFailed(id string, err error) {
	a.update(id, func(s *CameraState) {
		s.Online, s.Approved, s.Error, s.VideoLost = false, false, errString(err), false
	})
	a.emit(event.Event{Kind: event.CameraOffline, Camera: id, Detail: errString(err)})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runCamera is one connection: identity check, stream URI, masker, then
// the stages (view check, PTZ lock, camera masks, pipeline, recorder). It returns when any stage
// fails or ctx ends.
func (a *Agent) runCamera(ctx context.Context, w *worker, log zerolog.Logger) error {
	defer func() {
		w.mu.Lock()
		a.foldPipeline(w)
		w.lock, w.pl = nil, nil
		w.mu.Unlock()
	}()
	s, err := a.openSession(ctx, w, log)
	if err != nil {
		return err
	}
	defer s.client.CloseIdleConnections()
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	s.errc = make(chan error, 4) // one per stage that can fail
	err = a.startStages(s)
	if err == nil {
		log.Info().Str("stream", a.StreamURL(w.cam.ID)).Str("profile", s.prof.Token).Msg("masked stream serving")
	}
	if err != nil {
		s.cancel()
	}
	s.group.Wait()
	for _, c := range s.closers {
		c()
	}
	close(s.errc)
	return stagesError(s.ctx, err, s.errc)
}

// openSession connects, checks the identity, resolves the stream and
// builds the masker with the camera's mask sets.
func (a *Agent) openSession(ctx context.Context, w *worker, log zerolog.Logger) (*session, error) {
	cam := w.cam
	cl, info, err := camera.Connect(ctx, cam)
	if err != nil {
		return nil, err
	}
	s := &session{w: w, log: log, client: cl}
	a.update(cam.ID, func(st *CameraState) { st.Identity = &info; st.Online, st.VideoLost = true, false; st.Error = "" })
	log.Info().Str("model", info.Model).Str("firmware", info.FirmwareVersion).Msg("camera connected")
	a.emit(event.Event{Kind: event.CameraOnline, Camera: cam.ID, Detail: fmt.Sprintf("%s %s firmware %s", info.Manufacturer, info.Model, info.FirmwareVersion)})
	s.uri, s.prof, err = camera.ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if refused := (*camera.RefusedError)(nil); errors.As(err, &refused) {
		a.streamRefused(w, refused)
	}
	if err == nil {
		s.masker, err = masking.NewMasker(cam.ID, maskspec.FailMode(cam.FailMode))
	}
	if err == nil {
		s.masker.OnStrengthRaised(func(note string) { log.Warn().Msg(note) })
	}
	var gen uint64
	if err == nil {
		gen, err = s.masker.SetMaskSets(cam.MaskSets())
	}
	if err != nil {
		cl.CloseIdleConnections()
		return nil, err
	}
	a.update(cam.ID, func(st *CameraState) { st.Generation = gen; st.Profile = s.prof.Token })
	return s, nil
}

// goStage runs one stage; its end (error or not) ends the session.
func (s *session) goStage(name string, f func(context.Context) error) {
	s.group.Go(func() {
		if err := f(s.ctx); err != nil && s.ctx.Err() == nil {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
		s.cancel()
	})
}

// startStages starts the view check, the PTZ lock (or approves a fixed
// view), the camera-side masks, the pipeline and the recorder.
func (a *Agent) startStages(s *session) error {
	if err := a.guardView(s); err != nil { // before the lock approves a view
		return err
	}
	if err := a.startLock(s); err != nil {
		return err
	}
	s.goStage("camera masks", func(ctx context.Context) error {
		a.guardCameraMasks(ctx, s)
		<-ctx.Done() // pushed, or not supported: the session goes on
		return nil
	})
	if err := a.startPipeline(s); err != nil {
		return err
	}
	return a.startRecorder(s)
}

// stagesError joins the stages' errors (a setup error first).
func stagesError(ctx context.Context, setup error, errc <-chan error) error {
	var errs []string
	if setup != nil {
		errs = append(errs, setup.Error())
	}
	for e := range errc {
		errs = append(errs, e.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return ctx.Err()
}
