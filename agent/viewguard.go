package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"velo/agent/config"
	"velo/agent/event"
	"velo/masking"
	"velo/masking/viewcheck"
)

// viewChecks routes each view's frames to that view's verifier (each view
// has its own references and its own tolerated shift).
type viewChecks map[string]*viewcheck.Verifier

// Check implements masking.ViewCheck.
func (vc viewChecks) Check(f *masking.Frame, view string) masking.ViewVerdict {
	v := vc[view]
	if v == nil {
		return masking.ViewVerdict{Reason: viewcheck.ReasonNoReference}
	}
	return v.Check(f, view)
}

// HasReference implements masking.ReferenceHolder.
func (vc viewChecks) HasReference(view string) bool { return vc[view] != nil }

func (vc viewChecks) close() {
	for _, v := range vc {
		v.Close()
	}
}

// loadViewChecks builds a verifier per view of cam from its day and night
// references. A view without any is left out (reported unverified by the
// masker); a reference that exists but cannot be read is an error: the
// camera does not stream on a broken reference.
func loadViewChecks(cfg *config.Config, cam *config.CameraConfig) (vc viewChecks, fixedAt *viewcheck.Position, err error) {
	vc = viewChecks{}
	for _, set := range cam.MaskSets() {
		var refs []*viewcheck.Reference
		for _, night := range []bool{false, true} {
			ref, err := viewcheck.Load(cfg.ReferencePath(cam.ID, set.Preset, night))
			switch {
			case errors.Is(err, os.ErrNotExist):
				continue
			case err != nil:
				vc.close()
				return nil, nil, err
			}
			if set.Preset == "" && ref.Position != nil && fixedAt == nil {
				fixedAt = ref.Position
			}
			refs = append(refs, ref)
		}
		if len(refs) == 0 {
			continue
		}
		v, err := viewcheck.New(refs, viewcheck.Options{MaxShift: cfg.MaxShift(cam, set.Preset)})
		if err != nil {
			vc.close()
			return nil, nil, fmt.Errorf("camera %q view %q: %w", cam.ID, set.Preset, err)
		}
		vc[set.Preset] = v
	}
	return vc, fixedAt, nil
}

// guardView turns per-frame verification on for the session's masker; its
// events go through a stage of the session (the mask stage never blocks
// on the audit log or the outbox).
func (a *Agent) guardView(s *session) error {
	cfg := a.cfg.Load()
	vc, fixedAt, err := loadViewChecks(cfg, s.w.cam)
	if err != nil {
		return err
	}
	s.fixedAt = fixedAt
	s.closers = append(s.closers, vc.close) // after every stage ended
	events := make(chan masking.ViewEvent, 64)
	s.masker.SetViewGuard(&masking.ViewGuardConfig{Check: vc, RestoreAfter: cfg.Verify.RestoreFrames,
		RequireReference: cfg.Verify.ReferenceRequired(),
		Report: func(e masking.ViewEvent) {
			select {
			case events <- e:
			default:
				s.log.Error().Str("event", string(e.Kind)).Msg("view event queue full: event lost")
			}
		}})
	s.goStage("view events", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case e := <-events:
				a.viewEvent(s.w.cam.ID, e)
			}
		}
	})
	return nil
}

// viewEvent reports a view guard transition and shows it in the state:
// no frame is out while the view does not match.
func (a *Agent) viewEvent(id string, e masking.ViewEvent) {
	v := e.Verdict
	tenth := func(x float64) float64 { return math.Round(x*10) / 10 }
	f := &event.ViewFinding{Reason: v.Reason, ShiftX: tenth(v.ShiftX), ShiftY: tenth(v.ShiftY), Scale: v.Scale,
		Rotation: v.Rotation, Score: v.Score, Frames: e.Frames}
	ev := event.Event{Kind: event.Kind(e.Kind), Camera: id, Preset: e.View, View: f}
	switch e.Kind {
	case masking.ViewMismatch:
		ev.Detail = fmt.Sprintf("the picture is not the approved view (%s): no frame out until it matches again", v.Reason)
		a.update(id, func(s *CameraState) { s.Approved = false })
	case masking.ViewRestored:
		ev.Detail = fmt.Sprintf("the picture matches the approved view again; %d frames withheld", e.Frames)
		a.update(id, func(s *CameraState) { s.Approved = true })
	case masking.ViewUnverified:
		ev.Detail = "the view has no reference picture (velo view capture)"
		if a.cfg.Load().Verify.ReferenceRequired() {
			ev.Detail += ": no video until one is recorded (verify.require_reference)"
			a.update(id, func(s *CameraState) { s.Approved = false })
		}
	}
	a.emit(ev)
}
