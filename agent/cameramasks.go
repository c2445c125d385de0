package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"velo/agent/cameramask"
	"velo/agent/event"
)

// guardCameraMasks pushes a fixed view's masks to the camera (defence in
// depth: Velo's own masks stay the floor), then reads them back every
// cameramask.CheckInterval and reports what went missing or changed. A
// camera that cannot hold them is noted once; nothing here stops video.
func (a *Agent) guardCameraMasks(ctx context.Context, s *session) {
	cam := s.w.cam
	rep, err := cameramask.Sync(ctx, s.client, cam, s.prof.Token)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("camera masks not pushed")
		}
		return
	}
	if rep.CameraUnsupported != "" {
		s.log.Info().Str("reason", rep.CameraUnsupported).Msg("camera-side masks not used")
		return
	}
	a.cameraMaskReport(cam.ID, rep, "after push")
	t := time.NewTicker(cameramask.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := cameramask.Check(ctx, s.client, cam, s.prof.Token)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("camera masks not read back")
			}
			continue
		}
		a.cameraMaskReport(cam.ID, rep, "read back")
	}
}

// cameraMaskReport turns a report's drift into events.
func (a *Agent) cameraMaskReport(id string, rep cameramask.Report, when string) {
	if len(rep.Missing) > 0 {
		var names []string
		for _, m := range rep.Missing {
			names = append(names, m.Name)
		}
		a.emit(event.Event{Kind: event.CameraMasksMissing, Camera: id,
			Detail: fmt.Sprintf("%s: masks missing on the camera: %s (Velo's own masks still apply)", when, strings.Join(names, ", "))})
	}
	if n := len(rep.Changed) + len(rep.Extra); n > 0 {
		var what []string
		for _, c := range rep.Changed {
			what = append(what, fmt.Sprintf("%s (%s)", c.Name, strings.Join(c.What, ", ")))
		}
		if len(rep.Extra) > 0 {
			what = append(what, fmt.Sprintf("%d mask(s) not Velo's", len(rep.Extra)))
		}
		a.emit(event.Event{Kind: event.CameraMasksChanged, Camera: id,
			Detail: fmt.Sprintf("%s: masks changed on the camera: %s (Velo's own masks still apply)", when, strings.Join(what, "; "))})
	}
}
