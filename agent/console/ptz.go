package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
)

// ptzTimeout bounds a commissioning move or preset save.
const ptzTimeout = 15 * time.Second

// maxStep bounds a relative move on each axis.
const maxStep = 0.5

// presetNameRE is a proposed preset's name (the camera stores it too).
var presetNameRE = regexp.MustCompile(`^[\pL\pN][\pL\pN _.-]{0,39}$`)

// ptzCommissioning is the request's open commissioning of a PTZ camera,
// or nil once the refusal is written.
// The session is checked again here, after the request's body was read:
// a logout or a lost role while the body came in refuses it.
func (s *Server) ptzCommissioning(w http.ResponseWriter, r *http.Request, q *request) *commissioning {
	if len(q.cam.Presets) == 0 {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("camera %q has no presets: it is not moved from the console", q.cam.ID))
		return nil
	}
	if !s.stillAllowed(r, q) {
		httpError(w, http.StatusUnauthorized, "the session ended")
		return nil
	}
	if err := q.op.May(access.ActCommission, q.cam.ID); err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return nil
	}
	c := s.sessions.openCommissioning(q.sess.id, q.cam.ID)
	if c == nil {
		if q.sess.comm != nil && q.sess.comm.Camera == q.cam.ID {
			s.closeCommissioning(q, "expired")
		}
		s.refuse(q.op.Name, q.cam.ID, r, "PTZ outside an open commissioning session")
		httpError(w, http.StatusForbidden, "no open commissioning session for this camera: open one with a reason")
		return nil
	}
	return c
}

// handlePTZ moves a PTZ camera inside commissioning: the first move holds
// its PTZ lock for this session (no snap-back; the stream blank until the
// session ends and the camera is back at its approved view). Each move is
// audited before it is made.
func (s *Server) handlePTZ(w http.ResponseWriter, r *http.Request, q *request) {
	var m PTZMove
	if !readJSON(w, r, &m) {
		return
	}
	if err := checkMove(m); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	c := s.ptzCommissioning(w, r, q)
	if c == nil {
		return
	}
	if !s.claimPTZ(q.sess.id, q.cam.ID) {
		httpError(w, http.StatusConflict, fmt.Sprintf("camera %q is being moved in another commissioning session, or this one closed: wait until it ends", q.cam.ID))
		return
	}
	defer s.releaseIfClosed(q.sess.id, q.cam.ID)
	kind := "absolute"
	if m.Relative {
		kind = "relative"
	}
	err := s.opts.Gateway.Audit(event.Event{Kind: event.CommissioningMove, Operator: q.op.Name, Camera: q.cam.ID, Reason: c.Reason,
		Position: &event.Position{Pan: m.Pan, Tilt: m.Tilt, Zoom: m.Zoom},
		Detail:   kind + " move in commissioning; the stream stays blank until the session ends and the camera is back at its approved view"})
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "camera not moved: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ptzTimeout)
	defer cancel()
	pos, err := s.opts.Gateway.PTZMove(ctx, q.cam.ID, m, c.Until)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"position": pos, "held": true})
}

func checkMove(m PTZMove) error {
	for _, v := range []float64{m.Pan, m.Tilt, m.Zoom} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("pan, tilt and zoom must be numbers")
		}
	}
	if m.Relative {
		if math.Abs(m.Pan) > maxStep || math.Abs(m.Tilt) > maxStep || math.Abs(m.Zoom) > maxStep {
			return fmt.Errorf("a relative move is at most %g per axis", maxStep)
		}
		return nil
	}
	if math.Abs(m.Pan) > 1 || math.Abs(m.Tilt) > 1 || m.Zoom < 0 || m.Zoom > 1 {
		return errors.New("an absolute move is in the generic spaces: pan and tilt −1..1, zoom 0..1")
	}
	return nil
}

// handleSavePreset saves the held camera's position as a proposed preset:
// the camera stores it as one of its presets (approving nothing: Velo
// moves only to approved presets) and the proposal — name, camera token,
// position, the masks of that view — waits for an admin (ER-4.7).
func (s *Server) handleSavePreset(w http.ResponseWriter, r *http.Request, q *request) {
	var body struct {
		Name  string `json:"name"`
		Masks []Mask `json:"masks"`
		Note  string `json:"note"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	name := strings.TrimSpace(body.Name)
	if !presetNameRE.MatchString(name) {
		httpError(w, http.StatusBadRequest, "a preset name of 1 to 40 letters, digits, spaces, '.', '_' or '-' is required")
		return
	}
	if _, err := specMasks(q.cam.ID, name, body.Masks); err != nil {
		httpError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	c := s.ptzCommissioning(w, r, q)
	if c == nil {
		return
	}
	if !s.holdsPTZ(q.sess.id, q.cam.ID) {
		httpError(w, http.StatusConflict, "move the camera first: a preset is saved from a position reached in this commissioning session")
		return
	}
	// Audited before the camera stores anything (a failure after it leaves
	// a preset on the camera that Velo never moves to).
	if err := s.opts.Gateway.Audit(event.Event{Kind: event.CommissioningMove, Operator: q.op.Name, Camera: q.cam.ID, Reason: c.Reason,
		Detail: fmt.Sprintf("the camera stores its position as preset %q, to be proposed (approves nothing)", name)}); err != nil {
		httpError(w, http.StatusServiceUnavailable, "preset not saved: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ptzTimeout)
	defer cancel()
	tok, pos, err := s.opts.Gateway.PTZSavePreset(ctx, q.cam.ID, name)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if slices.ContainsFunc(q.cam.Presets, func(p config.PresetConfig) bool { return p.Token == tok }) {
		httpError(w, http.StatusConflict, fmt.Sprintf("camera %q gave token %q, an approved preset's: not proposed", q.cam.ID, tok))
		return
	}
	p := Proposal{ID: randomToken()[:16], Camera: q.cam.ID, Preset: tok, Name: name, Masks: body.Masks, Note: trimNote(body.Note),
		Position: &config.ManagedPosition{Pan: pos.Pan, Tilt: pos.Tilt, Zoom: pos.Zoom}, By: q.op.Name, Created: s.opts.Now().UTC(), Status: "proposed"}
	if err := s.props.Add(p); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.opts.Gateway.Emit(event.Event{Kind: event.ViewProposed, Operator: q.op.Name, Camera: p.Camera, Preset: p.Preset, Reason: c.Reason, Position: &pos,
		Detail: fmt.Sprintf("proposal %s: new preset %q (camera token %s) at pan %.3f tilt %.3f zoom %.3f, %d masks; takes effect only when an admin approves it (ER-4.7)",
			p.ID, name, tok, pos.Pan, pos.Tilt, pos.Zoom, len(p.Masks))})
	writeJSON(w, http.StatusOK, p)
}

func trimNote(n string) string {
	n = strings.TrimSpace(n)
	if len(n) > 500 {
		n = n[:500]
	}
	return n
}
