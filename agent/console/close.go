package console

import (
	"context"
	"time"

	"velo/agent/access"
	"velo/agent/event"
)

// A commissioning session ends, with its commissioning_closed event (log,
// audit log, MQTT) and the release of the PTZ hold it took, however it
// ends: closed by the operator, another camera opened, logout, its time
// up or its login session's, the operator evicted by a newer login, the
// operator's installer or admin role or the camera's assignment gone in a
// reload, the camera removed, or the agent stopping. The sweep finds the
// ends no request sees.

// sweepInterval is how often open commissioning sessions are checked.
const sweepInterval = time.Second

// releaseTimeout bounds the wait for a PTZ lock to take a release.
const releaseTimeout = 10 * time.Second

// sweep closes every commissioning session that has ended by time or by
// a config change, and forgets expired login sessions it kept for that.
func (s *Server) sweep() {
	now := s.opts.Now()
	cfg := s.opts.Gateway.Config()
	for _, x := range s.sessions.commissioned() {
		why := ""
		op := cfg.Operator(x.op.Name)
		switch {
		case !now.Before(x.expires):
			why = "login session expired"
		case !now.Before(x.comm.Until):
			why = "expired"
		case op == nil || !consoleRole(op):
			why = "operator no longer has the installer or admin role"
		case cfg.Camera(x.comm.Camera) == nil:
			why = "camera removed from the config"
		case op.May(access.ActCommission, x.comm.Camera) != nil:
			why = "camera no longer assigned to the operator"
		}
		if why == "" {
			continue
		}
		s.closeComm(x.id, x.op.Name, why)
		if !now.Before(x.expires) || op == nil || !consoleRole(op) {
			s.sessions.drop(x.id)
		}
	}
}

// closeAll closes every open commissioning session (the console stops);
// the PTZ locks stop with the agent, and move each camera to its preset
// at the next start.
func (s *Server) closeAll(why string) {
	for _, x := range s.sessions.commissioned() {
		if c := s.sessions.takeCommissioning(x.id); c != nil {
			s.closedComm(x.id, x.op.Name, c, why, false)
		}
	}
}

// closeComm closes session id's commissioning, if open (once).
func (s *Server) closeComm(id, operator, why string) {
	if c := s.sessions.takeCommissioning(id); c != nil {
		s.closedComm(id, operator, c, why, true)
	}
}

// closedComm reports a closed commissioning and, with release, ends the
// PTZ hold its session took.
func (s *Server) closedComm(id, operator string, c *commissioning, why string, release bool) {
	s.opts.Gateway.Emit(event.Event{Kind: event.CommissioningClosed, Operator: operator, Camera: c.Camera, Reason: c.Reason, Detail: why})
	s.ptzMu.Lock()
	held := s.ptz[c.Camera] == id
	if held {
		delete(s.ptz, c.Camera)
	}
	s.ptzMu.Unlock()
	if held && release {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := s.opts.Gateway.PTZRelease(ctx, c.Camera, "commissioning closed: "+why); err != nil {
			s.opts.Log.Warn().Err(err).Str("camera", c.Camera).Msg("PTZ hold not released (a camera that reconnects is locked afresh)")
		}
	}
}

// dropSession ends a login session and its commissioning.
func (s *Server) dropSession(id, operator, why string) {
	s.closeComm(id, operator, why)
	s.sessions.drop(id)
}

// claimPTZ makes session id the one holding camera's PTZ lock, if its
// commissioning of camera is still open; false: it is not, or another
// live session holds the camera.
func (s *Server) claimPTZ(id, camera string) bool {
	s.ptzMu.Lock()
	defer s.ptzMu.Unlock()
	if s.sessions.openCommissioning(id, camera) == nil {
		return false
	}
	if h := s.ptz[camera]; h != "" && h != id && s.sessions.alive(h) {
		return false
	}
	s.ptz[camera] = id
	return true
}

// releaseIfClosed ends the PTZ hold a move just took when session id's
// commissioning closed while the move ran (the close saw no hold yet).
func (s *Server) releaseIfClosed(id, camera string) {
	if s.sessions.openCommissioning(id, camera) != nil {
		return
	}
	s.ptzMu.Lock()
	if s.ptz[camera] == id {
		delete(s.ptz, camera)
	}
	s.ptzMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := s.opts.Gateway.PTZRelease(ctx, camera, "commissioning closed during a move"); err != nil {
		s.opts.Log.Warn().Err(err).Str("camera", camera).Msg("PTZ hold not released (a camera that reconnects is locked afresh)")
	}
}

// holdsPTZ reports whether session id holds camera's PTZ lock.
func (s *Server) holdsPTZ(id, camera string) bool {
	s.ptzMu.Lock()
	defer s.ptzMu.Unlock()
	return s.ptz[camera] == id
}
