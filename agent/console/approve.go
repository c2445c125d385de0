package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/event"
	"velo/internal/safefile"
)

// handlePropose saves the installer's view as a proposal: nothing changes
// until an admin approves it.
func (s *Server) handlePropose(w http.ResponseWriter, r *http.Request, q *request) {
	var body struct {
		Preset string `json:"preset"`
		Masks  []Mask `json:"masks"`
		Note   string `json:"note"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if _, ok := viewMasks(q.cam, body.Preset); !ok {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("camera %q has no view %q", q.cam.ID, body.Preset))
		return
	}
	if _, err := specMasks(q.cam.ID, body.Preset, body.Masks); err != nil {
		httpError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	p := Proposal{ID: randomToken()[:16], Camera: q.cam.ID, Preset: body.Preset, Masks: body.Masks, Note: strings.TrimSpace(body.Note),
		By: q.op.Name, Created: s.opts.Now().UTC(), Status: "proposed"}
	if len(p.Note) > 500 {
		p.Note = p.Note[:500]
	}
	if err := s.props.Add(p); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.opts.Gateway.Emit(event.Event{Kind: event.ViewProposed, Operator: q.op.Name, Camera: p.Camera, Preset: p.Preset,
		Detail: fmt.Sprintf("proposal %s: %d masks; takes effect only when an admin approves it (ER-4.7)", p.ID, len(p.Masks))})
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleProposals(w http.ResponseWriter, r *http.Request, q *request) {
	list, err := s.props.List()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	list = slices.DeleteFunc(list, func(p Proposal) bool { return q.op.May(access.ActCommission, p.Camera) != nil })
	if list == nil {
		list = []Proposal{}
	}
	writeJSON(w, http.StatusOK, list)
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// handleApprove: an admin enters the approval (by, date, document) of a
// proposal; the view is then validated with velo config check's rules,
// written to the managed views file, reloaded and audited with a diff.
func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request, q *request) {
	var ap config.ApprovalConfig
	if !readJSON(w, r, &ap) {
		return
	}
	ap.By, ap.Date, ap.Document = strings.TrimSpace(ap.By), strings.TrimSpace(ap.Date), strings.TrimSpace(ap.Document)
	pid := r.PathValue("pid")
	var diff string
	p, err := s.props.Update(pid, func(p *Proposal) error {
		if err := q.op.May(access.ActViewApprove, p.Camera); err != nil {
			return errForbidden{err}
		}
		if p.Status != "proposed" {
			return fmt.Errorf("proposal %s is %s", p.ID, p.Status)
		}
		if ap.By == "" || ap.Document == "" || !dateRE.MatchString(ap.Date) {
			return errors.New("the approval needs by, date (YYYY-MM-DD) and document (ER-4.7)")
		}
		var err error
		if diff, err = s.apply(r.Context(), *p, ap, q.op.Name); err != nil {
			return err
		}
		p.Status, p.Approval, p.ApprovedBy, p.ApprovedAt, p.Diff = "approved", &ap, q.op.Name, s.opts.Now().UTC(), diff
		return nil
	})
	if err != nil {
		code := http.StatusUnprocessableEntity
		if errors.As(err, new(errForbidden)) {
			code = http.StatusForbidden
		}
		s.refuse(q.op.Name, p.Camera, r, "approval of proposal "+pid+" refused: "+err.Error())
		httpError(w, code, err.Error())
		return
	}
	s.opts.Gateway.Emit(event.Event{Kind: event.ViewApproved, Operator: q.op.Name, Camera: p.Camera, Preset: p.Preset, Ref: ap.Document,
		Detail: fmt.Sprintf("proposal %s by %s approved by %s on %s (document %s), applied: %s", p.ID, p.By, ap.By, ap.Date, ap.Document, diff)})
	writeJSON(w, http.StatusOK, p)
}

type errForbidden struct{ error }

// captureReference records the view's reference picture with its new
// masks, before the reload that applies them; it says how that went (the
// approval goes on without one) and returns how to undo it.
func (s *Server) captureReference(ctx context.Context, p Proposal, operator string) (string, func()) {
	masks, err := specMasks(p.Camera, p.Preset, p.Masks)
	if err != nil {
		return "view reference NOT captured (" + err.Error() + ")", func() {}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sum, undo, err := s.opts.Gateway.CaptureReference(ctx, p.Camera, p.Preset, masks, operator)
	if err != nil {
		return "view reference NOT captured (" + err.Error() + "): record it with velo view capture", func() {}
	}
	return "view reference captured, SHA-256 " + sum, undo
}

// managedFile is the managed views file as the console writes it.
type managedFile struct {
	Views []managedView `yaml:"views"`
}

type managedView struct {
	Camera   string                  `yaml:"camera"`
	Preset   string                  `yaml:"preset,omitempty"`
	Position *config.ManagedPosition `yaml:"position,omitempty,flow"`
	Masks    []Mask                  `yaml:"masks"`
	Approval config.ApprovalConfig   `yaml:"approval"`
}

// apply writes the approved view into the managed views file, after
// checking the whole site config with it (the rules of velo config
// check), and reloads; a reload refused puts the file back as it was.
func (s *Server) apply(ctx context.Context, p Proposal, ap config.ApprovalConfig, operator string) (string, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	cfg := s.opts.Gateway.Config()
	path := cfg.ViewsPath()
	if path == "" {
		return "", errors.New("the site config names no views_file: add one (e.g. views_file: console-views.yaml) to approve views from the console")
	}
	old, err := safefile.ReadFile(path, 4<<20)
	exists := err == nil
	if _, serr := os.Lstat(path); err != nil && !errors.Is(serr, fs.ErrNotExist) {
		return "", fmt.Errorf("views_file: %w", err)
	}
	var mf managedFile
	if exists {
		if err := yaml.Unmarshal(old, &mf); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
	}
	cam := cfg.Camera(p.Camera)
	if cam == nil {
		return "", fmt.Errorf("camera %q is no longer in the site config", p.Camera)
	}
	before, had := viewMasks(cam, p.Preset)
	diff := maskDiff(consoleMasks(before), p.Masks)
	if p.Position != nil {
		if had {
			return "", fmt.Errorf("camera %q already has a preset %q", p.Camera, p.Preset)
		}
		diff = fmt.Sprintf("new preset %q (token %s) at pan %.3f tilt %.3f zoom %.3f; %s", p.Name, p.Preset, p.Position.Pan, p.Position.Tilt, p.Position.Zoom, diff)
	}
	mv := managedView{Camera: p.Camera, Preset: p.Preset, Position: p.Position, Masks: p.Masks, Approval: ap}
	if i := slices.IndexFunc(mf.Views, func(v managedView) bool { return v.Camera == p.Camera && v.Preset == p.Preset }); i >= 0 {
		if mv.Position == nil { // a preset the file added keeps its position
			mv.Position = mf.Views[i].Position
		}
		mf.Views[i] = mv
	} else {
		mf.Views = append(mf.Views, mv)
	}
	var buf bytes.Buffer
	buf.WriteString("# Managed by velo's installer console: views approved there (ER-4.7).\n# Do not edit by hand; site.yaml includes it through views_file.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(mf); err != nil {
		return "", err
	}
	if _, err := config.LoadWithViews(cfg.File(), buf.Bytes()); err != nil {
		return "", fmt.Errorf("the site config with this view does not pass velo config check: %w", err)
	}
	refNote, undoRef := "", func() {}
	if p.Position == nil { // a new preset's camera is not there yet: after the reload
		refNote, undoRef = s.captureReference(ctx, p, operator)
	}
	if err := safefile.WriteFile(path, buf.Bytes(), 0o640); err != nil {
		undoRef()
		return "", err
	}
	if err := s.opts.Gateway.Reload(); err != nil {
		undoRef()
		if exists {
			_ = safefile.WriteFile(path, old, 0o640)
		} else {
			_ = os.Remove(path)
		}
		return "", fmt.Errorf("reload refused, the views file is back as it was: %w", err)
	}
	if p.Position != nil {
		refNote = s.capturePresetReference(ctx, p, operator)
	}
	return diff + "; " + refNote, nil
}

// capturePresetReference records the reference of a preset the approval
// just added (the reload applied it); it says how that went (the
// approval stands without one).
func (s *Server) capturePresetReference(ctx context.Context, p Proposal, operator string) string {
	masks, err := specMasks(p.Camera, p.Preset, p.Masks)
	if err != nil {
		return "view reference NOT captured (" + err.Error() + ")"
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	sum, err := s.opts.Gateway.CapturePresetReference(ctx, p.Camera, p.Preset, masks, operator)
	if err != nil {
		return "view reference NOT captured (" + err.Error() + "): apply the preset and record it with velo view capture"
	}
	return "view reference captured at the new preset, SHA-256 " + sum
}
