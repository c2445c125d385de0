package cameramask

import (
	"context"
	"errors"
	"fmt"

	"velo/agent/config"
	"velo/onvif"
)

// MaskReader is what Check needs from a camera (onvif.*Client has it).
type MaskReader interface {
	GetProfiles(ctx context.Context) ([]onvif.Profile, error)
	GetMaskOptions(ctx context.Context, configToken string) (onvif.MaskOptions, error)
	GetMasks(ctx context.Context, configToken string) ([]onvif.Mask, error)
}

// Device is what Sync needs from a camera (onvif.*Client has it).
type Device interface {
	MaskReader
	CreateMask(ctx context.Context, m onvif.Mask) (string, error)
	SetMask(ctx context.Context, m onvif.Mask) error
	DeleteMask(ctx context.Context, token string) error
}

// Reasons a camera's masks are not used at all (Report.CameraUnsupported).
const (
	ReasonNoMedia2 = "the camera has no Media2 privacy masks"
	ReasonPresets  = "the camera has presets: ONVIF ties a mask to the video source, not to a preset, so one mask set cannot follow the camera between views"
)

// Sync makes the masks of the profile's video source configuration the
// fixed view's (cam.Masks): it keeps the masks already right, rewrites
// those that changed, deletes the others and creates the missing, then
// reads them back. The report lists what the camera holds, what it
// cannot take, what was removed, and any drift left after the read-back.
// profileToken "" means cam.Profile, or the camera's first profile.
func Sync(ctx context.Context, dev Device, cam *config.CameraConfig, profileToken string) (Report, error) {
	st, err := load(ctx, dev, cam, profileToken)
	if err != nil || st.rep.CameraUnsupported != "" {
		return st.rep, err
	}
	s := &syncer{dev: dev, st: &st, actions: map[string]string{}}
	if err := s.apply(ctx, match(st.expected, st.have)); err != nil {
		return st.rep, err
	}
	have, err := readMasks(ctx, dev, cam.ID, st.rep.Source)
	if err != nil {
		return st.rep, err
	}
	st.rep.fill(match(st.expected, have), s.actions)
	return st.rep, nil
}

// Check reads the camera's masks back and compares them with the fixed
// view's: missing, changed and extra masks are drift. It changes nothing.
func Check(ctx context.Context, dev MaskReader, cam *config.CameraConfig, profileToken string) (Report, error) {
	st, err := load(ctx, dev, cam, profileToken)
	if err != nil || st.rep.CameraUnsupported != "" {
		return st.rep, err
	}
	st.rep.fill(match(st.expected, st.have), nil)
	return st.rep, nil
}

// state is what Sync and Check learn before comparing.
type state struct {
	rep      Report
	expected []Expected
	have     []onvif.Mask
}

// load resolves the video source, reads the camera's mask options and
// masks, and plans the view's masks for this camera.
func load(ctx context.Context, dev MaskReader, cam *config.CameraConfig, profileToken string) (state, error) {
	if profileToken == "" {
		profileToken = cam.Profile
	}
	st := state{rep: Report{Camera: cam.ID, Profile: profileToken}}
	if len(cam.Presets) > 0 {
		st.rep.CameraUnsupported = ReasonPresets
		return st, nil
	}
	profile, source, err := sourceOf(ctx, dev, cam.ID, profileToken)
	if err != nil {
		return st, err
	}
	st.rep.Profile, st.rep.Source = profile, source
	opt, err := dev.GetMaskOptions(ctx, source)
	if errors.Is(err, onvif.ErrNotSupported) {
		st.rep.CameraUnsupported = ReasonNoMedia2
		return st, nil
	}
	if err != nil {
		return st, opError(cam.ID, "GetMaskOptions "+source, err)
	}
	st.rep.Options = &opt
	st.expected, st.rep.Unsupported = plan(cam.Masks, source, opt)
	st.have, err = readMasks(ctx, dev, cam.ID, source)
	if errors.Is(err, onvif.ErrNotSupported) {
		st.rep = Report{Camera: cam.ID, Profile: profile, Source: source, CameraUnsupported: ReasonNoMedia2}
		return st, nil
	}
	return st, err
}

// sourceOf returns the profile's token (the first profile when profile is
// "") and its video source configuration token.
func sourceOf(ctx context.Context, dev MaskReader, camera, profile string) (string, string, error) {
	profiles, err := dev.GetProfiles(ctx)
	if err != nil {
		return "", "", opError(camera, "GetProfiles", err)
	}
	for _, p := range profiles {
		if profile != "" && p.Token != profile {
			continue
		}
		if p.Source == nil || p.Source.Token == "" {
			return "", "", fmt.Errorf("cameramask: camera %q: profile %q has no video source configuration", camera, p.Token)
		}
		return p.Token, p.Source.Token, nil
	}
	return "", "", fmt.Errorf("cameramask: camera %q: GetProfiles: profile %q not found", camera, profile)
}

// readMasks returns the masks of the video source configuration (some
// cameras ignore the filter and return every mask).
func readMasks(ctx context.Context, dev MaskReader, camera, source string) ([]onvif.Mask, error) {
	all, err := dev.GetMasks(ctx, source)
	if err != nil {
		return nil, opError(camera, "GetMasks "+source, err)
	}
	var out []onvif.Mask
	for _, m := range all {
		if m.ConfigurationToken == "" || m.ConfigurationToken == source {
			out = append(out, m)
		}
	}
	return out, nil
}

func opError(camera, op string, err error) error {
	return fmt.Errorf("cameramask: camera %q: %s: %w", camera, op, err)
}

// fill records a comparison in the report; actions (Sync's, by token)
// may be nil.
func (r *Report) fill(m matching, actions map[string]string) {
	r.Pushed, r.Missing, r.Changed, r.Extra = nil, m.missing, nil, m.extra
	for _, p := range m.same {
		action := ""
		if actions != nil {
			action = actions[p.got.Token]
			if action == "" {
				action = ActionUnchanged
			}
		}
		r.Pushed = append(r.Pushed, Pushed{Expected: p.exp, Token: p.got.Token, Action: action})
	}
	for _, p := range m.changed {
		r.Changed = append(r.Changed, Changed{Expected: p.exp, Got: p.got, What: p.what})
	}
}
