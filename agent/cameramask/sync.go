package cameramask

import (
	"context"
	"errors"

	"velo/onvif"
)

// syncer applies one comparison to the camera.
type syncer struct {
	dev Device
	st  *state
	// actions are what was done, by mask token.
	actions map[string]string
}

// apply rewrites changed masks, deletes extra ones, then creates the
// missing (in that order, so the camera's mask count stays within its
// maximum).
func (s *syncer) apply(ctx context.Context, m matching) error {
	for _, p := range m.changed {
		if err := s.update(ctx, p); err != nil {
			return err
		}
	}
	for _, x := range m.extra {
		if err := s.remove(ctx, x); err != nil {
			return err
		}
	}
	for _, e := range m.missing {
		if err := s.create(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// update rewrites the camera mask p.got as p.exp; a mask the camera
// refuses is reported unsupported and the camera's changed one deleted.
func (s *syncer) update(ctx context.Context, p pair) error {
	m := p.exp.Mask
	m.Token = p.got.Token
	err := s.dev.SetMask(ctx, m)
	switch {
	case err == nil:
		s.actions[m.Token] = ActionUpdated
		return nil
	case errors.Is(err, onvif.Subcode("NoToken")): // deleted meanwhile
		return s.create(ctx, p.exp)
	case refused(err):
		s.refuse(p.exp, err)
		return s.remove(ctx, p.got)
	}
	return opError(s.st.rep.Camera, "SetMask "+m.Token+" ("+p.exp.Name+")", err)
}

// create creates an expected mask; one the camera refuses is reported
// unsupported.
func (s *syncer) create(ctx context.Context, e Expected) error {
	tok, err := s.dev.CreateMask(ctx, e.Mask)
	switch {
	case err == nil:
		s.actions[tok] = ActionCreated
		return nil
	case refused(err):
		s.refuse(e, err)
		return nil
	}
	return opError(s.st.rep.Camera, "CreateMask ("+e.Name+")", err)
}

// remove deletes a camera mask that is not the view's; one already gone
// is not an error.
func (s *syncer) remove(ctx context.Context, m onvif.Mask) error {
	err := s.dev.DeleteMask(ctx, m.Token)
	if err != nil && !errors.Is(err, onvif.Subcode("NoToken")) {
		return opError(s.st.rep.Camera, "DeleteMask "+m.Token, err)
	}
	s.st.rep.Removed = append(s.st.rep.Removed, m)
	return nil
}

// refuse moves e from the expected masks to the unsupported ones, with
// the camera's reason.
func (s *syncer) refuse(e Expected, err error) {
	reason := err.Error()
	var fe *onvif.FaultError
	if errors.As(err, &fe) {
		reason = fe.Error()
	}
	s.st.rep.Unsupported = append(s.st.rep.Unsupported, Unsupported{Name: e.Name, Reason: "the camera refused it: " + reason})
	for i, x := range s.st.expected {
		if x.index == e.index {
			s.st.expected = append(s.st.expected[:i:i], s.st.expected[i+1:]...)
			break
		}
	}
}

// refused reports whether the camera turned a mask down (bad argument,
// too many masks, a type it lacks) rather than failing.
func refused(err error) bool {
	return errors.Is(err, onvif.ErrInvalidArgument) || errors.Is(err, onvif.ErrNotSupported) ||
		errors.Is(err, onvif.Subcode("MaxMasks"))
}
