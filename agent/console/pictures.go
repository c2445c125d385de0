package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"velo/agent/config"
	"velo/agent/event"
	"velo/masking/maskspec"
)

// pictureTimeout bounds the wait for a camera's next frame.
const pictureTimeout = 10 * time.Second

// handleSnapshot: the camera's masked snapshot, a copy of a frame its
// stream encoded (blank or absent when the stream is).
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request, q *request) {
	ctx, cancel := context.WithTimeout(r.Context(), pictureTimeout)
	defer cancel()
	jpg, err := s.opts.Gateway.MaskedSnapshot(ctx, q.cam.ID)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.opts.Gateway.Emit(event.Event{Kind: event.ConsoleSnapshot, Operator: q.op.Name, Camera: q.cam.ID, Detail: "masked snapshot shown"})
	writeJPEG(w, jpg)
}

// openCommissioning is the session's commissioning for cam, if open.
func (s *Server) openCommissioning(q *request, cam string) *commissioning {
	c := q.sess.comm
	if c == nil || c.Camera != cam || !s.opts.Now().Before(c.Until) {
		return nil
	}
	return c
}

// handleStill: the unmasked still, only inside an open commissioning
// session of this camera, watermarked with the operator and the time.
func (s *Server) handleStill(w http.ResponseWriter, r *http.Request, q *request) {
	c := s.openCommissioning(q, q.cam.ID)
	if c == nil {
		if q.sess.comm != nil && q.sess.comm.Camera == q.cam.ID {
			s.closeCommissioning(q, "expired")
		}
		s.refuse(q.op.Name, q.cam.ID, r, "unmasked still outside an open commissioning session")
		httpError(w, http.StatusForbidden, "no open commissioning session for this camera: open one with a reason")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pictureTimeout)
	defer cancel()
	jpg, err := s.opts.Gateway.UnmaskedStill(ctx, q.cam.ID, s.watermark(q, c))
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if !s.auditStill(w, q, c, "", "unmasked still shown, watermarked") {
		return
	}
	writeJPEG(w, jpg)
}

// watermark is what a commissioning picture has burned in.
func (s *Server) watermark(q *request, c *commissioning) []string {
	now := s.opts.Now().UTC()
	return []string{"COMMISSIONING " + q.op.Name + " " + now.Format("2006-01-02 15:04:05Z"), q.cam.ID + " - until " + c.Until.UTC().Format("15:04Z")}
}

// auditStill records a commissioning picture with the session's reason;
// when the audit log does not take it the picture is refused (503).
func (s *Server) auditStill(w http.ResponseWriter, q *request, c *commissioning, preset, detail string) bool {
	err := s.opts.Gateway.Audit(event.Event{Kind: event.CommissioningStill, Operator: q.op.Name, Camera: q.cam.ID, Preset: preset,
		Reason: c.Reason, Detail: detail})
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, "unmasked picture not shown: "+err.Error())
		return false
	}
	return true
}

// handlePreview renders proposed masks with Velo's masker. Outside
// commissioning they are drawn over a frame the stream encoded (the
// approved static and dynamic masks already applied), only while the
// camera streams at the view (else 409); inside commissioning over the
// unmasked still, watermarked and audited as a commissioning still.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request, q *request) {
	var body struct {
		Preset string `json:"preset"`
		Masks  []Mask `json:"masks"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if _, ok := viewMasks(q.cam, body.Preset); !ok {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("camera %q has no view %q", q.cam.ID, body.Preset))
		return
	}
	masks, err := specMasks(q.cam.ID, body.Preset, body.Masks)
	if err != nil {
		httpError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pictureTimeout)
	defer cancel()
	c := s.openCommissioning(q, q.cam.ID)
	var mark []string
	if c != nil {
		mark = s.watermark(q, c)
	}
	jpg, err := s.opts.Gateway.Preview(ctx, q.cam.ID, body.Preset, masks, mark)
	switch {
	case errors.Is(err, ErrNotAtView):
		httpError(w, http.StatusConflict, err.Error()+": no preview until it streams at the view")
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	detail := fmt.Sprintf("preview of %d proposed masks", len(masks))
	if c != nil {
		if !s.auditStill(w, q, c, body.Preset, detail+" on the unmasked still, watermarked") {
			return
		}
	} else {
		s.opts.Gateway.Emit(event.Event{Kind: event.ConsoleSnapshot, Operator: q.op.Name, Camera: q.cam.ID, Preset: body.Preset,
			Detail: detail + " over the stream's masked frame"})
	}
	writeJPEG(w, jpg)
}

// viewMasks are the approved masks of the camera's view preset.
func viewMasks(cam *config.CameraConfig, preset string) ([]maskspec.Mask, bool) {
	for _, set := range cam.MaskSets() {
		if set.Preset == preset {
			return set.Masks, true
		}
	}
	return nil, false
}

// handleCommission opens a commissioning session of the camera, with a
// reason, for console.commissioning_ttl.
func (s *Server) handleCommission(w http.ResponseWriter, r *http.Request, q *request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	reason := strings.TrimSpace(body.Reason)
	if len(reason) < 5 || len(reason) > 200 {
		httpError(w, http.StatusBadRequest, "a reason of 5 to 200 characters is required (it is audited)")
		return
	}
	now := s.opts.Now()
	c := &commissioning{Camera: q.cam.ID, Reason: reason, Opened: now, Until: now.Add(time.Duration(s.opts.Config.CommissioningTTL))}
	if q.sess.comm != nil {
		s.closeCommissioning(q, "another camera opened")
	}
	err := s.opts.Gateway.Audit(event.Event{Kind: event.CommissioningOpened, Operator: q.op.Name, Camera: q.cam.ID, Reason: reason,
		Detail: "commissioning session until " + c.Until.UTC().Format(time.RFC3339)})
	if err != nil { // no unmasked picture without its record
		httpError(w, http.StatusServiceUnavailable, "commissioning not opened: "+err.Error())
		return
	}
	s.sessions.setCommissioning(q.sess.id, c)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleCommissionClose(w http.ResponseWriter, r *http.Request, q *request) {
	if q.sess.comm != nil {
		s.closeCommissioning(q, "closed by the operator")
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Server) closeCommissioning(q *request, why string) {
	s.closeComm(q.sess.id, q.op.Name, why)
	q.sess.comm = nil
}
