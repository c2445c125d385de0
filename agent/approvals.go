package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"velo/agent/config"
	"velo/agent/event"
	"velo/masking/maskspec"
)

// approvedViewsFile, in the state dir, keeps the last approved views of
// every camera (position, tolerance, masks, approval), written at start
// and after each accepted reload. Without it a change made while velo is
// stopped would escape the ER-4.7 comparison a reload makes.
const approvedViewsFile = "approved-views.json"

// approvalBaseline is the baseline the ER-4.7 comparison uses, at start and
// at each reload: per camera the views last approved, and the cameras
// refused because their views changed without a new approval document.
type approvalBaseline struct {
	mu      sync.Mutex
	path    string
	cams    map[string]*config.CameraConfig
	refused map[string]error
}

// storedCamera is one camera's approved views as the file keeps them.
type storedCamera struct {
	ID      string       `json:"id"`
	Fixed   *storedView  `json:"fixed,omitempty"`
	Presets []storedView `json:"presets,omitempty"`
}

type storedView struct {
	Preset    string                `json:"preset,omitempty"`
	Position  [3]float64            `json:"position"` // pan, tilt, zoom
	Tolerance float64               `json:"tolerance"`
	Masks     []storedMask          `json:"masks"`
	Approval  config.ApprovalConfig `json:"approval"`
}

// storedMask keeps the fill colour too, which maskspec leaves out of JSON.
type storedMask struct {
	maskspec.Mask
	Color maskspec.YUV `json:"color"`
}

func storeMasks(ms []maskspec.Mask) []storedMask {
	out := []storedMask{}
	for _, m := range ms {
		out = append(out, storedMask{Mask: m, Color: m.Color})
	}
	return out
}

func loadMasks(ms []storedMask) []maskspec.Mask {
	var out []maskspec.Mask
	for _, m := range ms {
		mask := m.Mask
		mask.Color = m.Color
		out = append(out, mask)
	}
	return out
}

// storeCamera is what the file keeps of cam's approved views.
func storeCamera(cam *config.CameraConfig) storedCamera {
	s := storedCamera{ID: cam.ID}
	if len(cam.Presets) == 0 {
		v := storedView{Masks: storeMasks(cam.Masks)}
		if cam.Approval != nil {
			v.Approval = *cam.Approval
		}
		s.Fixed = &v
	}
	for _, p := range cam.Presets {
		s.Presets = append(s.Presets, storedView{Preset: p.Token, Position: [3]float64{p.Position.Pan, p.Position.Tilt, p.Position.Zoom},
			Tolerance: p.Tolerance, Masks: storeMasks(p.Masks), Approval: p.Approval})
	}
	return s
}

// camera rebuilds the views of a stored camera as a config camera, for
// config.ViewChanges.
func (s storedCamera) camera() *config.CameraConfig {
	c := &config.CameraConfig{ID: s.ID}
	if s.Fixed != nil {
		a := s.Fixed.Approval
		c.Masks, c.Approval = loadMasks(s.Fixed.Masks), &a
	}
	for _, v := range s.Presets {
		p := config.PresetConfig{Token: v.Preset, Tolerance: v.Tolerance, Approval: v.Approval, Masks: loadMasks(v.Masks)}
		p.Position.Pan, p.Position.Tilt, p.Position.Zoom = v.Position[0], v.Position[1], v.Position[2]
		c.Presets = append(c.Presets, p)
	}
	return c
}

// viewChanges is config.ViewChanges (the ER-4.7 rule) with both sides in
// the stored form, so a view read back from the file equals the config
// it was written from (an empty and a missing mask list are the same).
func viewChanges(before, after *config.CameraConfig) ([]config.ViewChange, error) {
	if before != nil {
		before = storeCamera(before).camera()
	}
	return config.ViewChanges(before, storeCamera(after).camera())
}

// readApprovedViews reads the file (found false when there is none).
func readApprovedViews(path string) (map[string]storedCamera, bool, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	var f struct {
		Cameras []storedCamera `json:"cameras"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &f)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w: it holds the last approved views, compared with the config at start (ER-4.7); restore it, or remove it to take the config's views as approved (audited)", path, err)
	}
	out := map[string]storedCamera{}
	for _, c := range f.Cameras {
		out[c.ID] = c
	}
	return out, true, nil
}

// saveLocked writes the baseline (v.mu held), through a temporary file.
func (v *approvalBaseline) saveLocked() error {
	f := struct {
		Saved   time.Time      `json:"saved"`
		Cameras []storedCamera `json:"cameras"`
	}{Saved: time.Now().UTC(), Cameras: []storedCamera{}}
	for _, id := range slices.Sorted(maps.Keys(v.cams)) {
		f.Cameras = append(f.Cameras, storeCamera(v.cams[id]))
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := v.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, v.path)
}

// checkApprovedViews compares, at start, each camera's views with the
// last approved ones (ER-4.7, as a reload does): a view whose position or
// masks changed under the same approval document keeps its camera from
// streaming (config_rejected); every accepted change is a view_changed
// event. The baseline is then saved: the config's views for accepted
// cameras, the earlier ones for refused cameras (a second restart does
// not make a refused change approved).
func (a *Agent) checkApprovedViews(cfg *config.Config) error {
	path := filepath.Join(cfg.StateDir, approvedViewsFile)
	stored, found, err := readApprovedViews(path)
	if err != nil {
		return fmt.Errorf("approved views: %w", err)
	}
	v := &a.views
	v.mu.Lock()
	defer v.mu.Unlock()
	v.path, v.cams, v.refused = path, map[string]*config.CameraConfig{}, map[string]error{}
	when := "while velo was stopped"
	if !found {
		when = "at the first start with this state dir (no earlier record)"
	}
	for i := range cfg.Cameras {
		cam := &cfg.Cameras[i]
		var before *config.CameraConfig
		if s, ok := stored[cam.ID]; ok {
			before = s.camera()
		}
		changes, err := viewChanges(before, cam)
		if err != nil {
			v.cams[cam.ID], v.refused[cam.ID] = before, fmt.Errorf("%w; changed %s, so camera %q does not stream until the change has its own approval document or is undone", err, when, cam.ID)
			a.emit(event.Event{Kind: event.ConfigRejected, Camera: cam.ID, Detail: v.refused[cam.ID].Error()})
			continue
		}
		v.cams[cam.ID] = cam
		a.emitViewChanges(changes, when)
	}
	if err := v.saveLocked(); err != nil {
		return fmt.Errorf("approved views: %w", err)
	}
	return nil
}

// emitViewChanges reports accepted view changes (ER-4.7) with their
// approval; when says when they were made.
func (a *Agent) emitViewChanges(changes []config.ViewChange, when string) {
	for _, ch := range changes {
		a.emit(event.Event{Kind: event.ViewChanged, Camera: ch.Camera, Preset: ch.Preset, Ref: ch.Approval.Document,
			Detail: fmt.Sprintf("view %s %s; approved by %s on %s (%s)", ch.What, when, ch.Approval.By, ch.Approval.Date, ch.Approval.Document)})
	}
}

// reloadViewChanges compares a camera's views after a reload with the
// last approved ones (the running config's, or for a camera refused at
// start the earlier approved views).
func (a *Agent) reloadViewChanges(old *config.Config, nc *config.CameraConfig) ([]config.ViewChange, error) {
	before := old.Camera(nc.ID)
	a.views.mu.Lock()
	if b, ok := a.views.cams[nc.ID]; ok {
		before = b
	}
	a.views.mu.Unlock()
	return viewChanges(before, nc)
}

// recordReload makes an accepted reload's views the approved ones (before
// the restarted cameras start: a camera refused at start whose views now
// have their approval streams again) and saves them.
func (a *Agent) recordReload(nc *config.Config, res ReloadResult) {
	v := &a.views
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cams == nil {
		return // Run did not start the cameras
	}
	for _, id := range res.Removed {
		delete(v.cams, id)
		delete(v.refused, id)
	}
	for _, id := range slices.Concat(res.Restarted, res.Added) {
		v.cams[id] = nc.Camera(id)
		delete(v.refused, id)
	}
	if err := v.saveLocked(); err != nil {
		a.log.Error().Err(err).Str("file", v.path).Msg("approved views not saved: the next start compares with the earlier ones")
	}
}

// waitViewsApproved returns true at once for a camera whose views are
// approved; a camera refused at start (ER-4.7) shows why in its state and
// is never read until ctx ends (a reload that fixes it restarts it).
func (a *Agent) waitViewsApproved(ctx context.Context, id string) bool {
	a.views.mu.Lock()
	err := a.views.refused[id]
	a.views.mu.Unlock()
	if err == nil {
		return true
	}
	a.update(id, func(s *CameraState) { s.Online, s.Approved, s.Error = false, false, err.Error() })
	<-ctx.Done()
	return false
}
