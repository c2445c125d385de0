package config

import (
	"velo/masking/codec"

	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"velo/internal/camid"
	"velo/masking/maskspec"
)

// validateCameras checks every camera and that no two are the same device.
func (c *Config) validateCameras() error {
	ids := map[string]bool{}
	matches := map[string]string{}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		f := func(name string) string { return fmt.Sprintf("cameras[%d].%s", i, name) }
		// One rule for IDs: used as they are in files, topics and URLs.
		if err := camid.Check(cam.ID); err != nil {
			return c.fieldError(f("id"), "%v", err)
		}
		if ids[cam.ID] {
			return c.fieldError(f("id"), "duplicate camera id %q", cam.ID)
		}
		ids[cam.ID] = true
		if strings.TrimSpace(cam.Purpose) == "" {
			return c.fieldError(f("purpose"), "camera %q: a purpose is required (G-2c)", cam.ID)
		}
		key, err := c.matchKey(cam, f)
		if err != nil {
			return err
		}
		if other, dup := matches[key]; dup {
			return c.fieldError(f("match"), "camera %q matches the same device as %q", cam.ID, other)
		}
		matches[key] = cam.ID
		if err := c.validateCamera(cam, i, f); err != nil {
			return err
		}
	}
	return nil
}

// validateCamera checks one camera's sections in order.
func (c *Config) validateCamera(cam *CameraConfig, i int, f func(string) string) error {
	for _, check := range []func(*CameraConfig, func(string) string) error{c.validateWorkplace, c.validateDevice, c.validateFailMode} {
		if err := check(cam, f); err != nil {
			return err
		}
	}
	if err := c.validateViews(cam, i, f); err != nil {
		return err
	}
	for _, check := range []func(*CameraConfig, func(string) string) error{c.validateLock, c.validateRecord, c.validateSchedule, c.validateEncoder, c.validateCapture, c.validateDynamic} {
		if err := check(cam, f); err != nil {
			return err
		}
	}
	return nil
}

// matchKey is how the camera is recognised: serial, MAC or endpoint,
// never its IP alone.
func (c *Config) matchKey(cam *CameraConfig, f func(string) string) (string, error) {
	m := cam.Match
	switch {
	case m.Serial != "":
		return "serial:" + m.Serial, nil
	case m.MAC != "":
		if _, err := net.ParseMAC(m.MAC); err != nil {
			return "", c.fieldError(f("match.mac"), "camera %q: %q is not a MAC address", cam.ID, m.MAC)
		}
		return "mac:" + strings.ToLower(m.MAC), nil
	case m.Endpoint != "":
		return "endpoint:" + m.Endpoint, nil
	}
	return "", c.fieldError(f("match"), "camera %q: match by serial, mac or endpoint (never by IP alone)", cam.ID)
}

// validateDevice checks the ONVIF address and the credentials' fields.
func (c *Config) validateDevice(cam *CameraConfig, f func(string) string) error {
	u, err := url.Parse(cam.XAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c.fieldError(f("xaddr"), "camera %q: %q is not http(s)://host/path", cam.ID, RedactURL(cam.XAddr))
	}
	if u.User != nil {
		return c.fieldError(f("xaddr"), "camera %q: credentials belong in username/password_file, not in the URL", cam.ID)
	}
	if cam.Username != "" && cam.PasswordFile == "" {
		return c.fieldError(f("password_file"), "camera %q: required with username", cam.ID)
	}
	return nil
}

func (c *Config) validateFailMode(cam *CameraConfig, f func(string) string) error {
	switch maskspec.FailMode(cam.FailMode) {
	case maskspec.FailBlank, maskspec.FailDrop:
		return nil
	}
	return c.fieldError(f("fail_mode"), "camera %q: %q is not blank or drop", cam.ID, cam.FailMode)
}

// validateViews checks the approved views (ER-4.7): a PTZ camera's presets
// each with position, tolerance, approval and masks; a fixed camera's one
// view with its approval and masks.
func (c *Config) validateViews(cam *CameraConfig, i int, f func(string) string) error {
	if len(cam.Presets) > 0 && len(cam.Masks) > 0 {
		return c.fieldError(f("masks"), "camera %q: a PTZ camera has masks per preset, not camera-wide", cam.ID)
	}
	toks := map[string]bool{}
	for j := range cam.Presets {
		if err := c.validatePreset(cam, &cam.Presets[j], i, j, toks); err != nil {
			return err
		}
	}
	if err := c.validateMaskSet(f("masks"), maskspec.MaskSet{Camera: cam.ID, Masks: cam.Masks}); err != nil {
		return err
	}
	switch {
	case len(cam.Presets) > 0 && cam.Approval != nil:
		return c.fieldError(f("approval"), "camera %q: a PTZ camera's approvals are per preset", cam.ID)
	case len(cam.Presets) == 0 && cam.Approval == nil:
		return c.fieldError(f("approval"), "camera %q: a fixed camera's view and masks need an approval (by, date, document; ER-4.7)", cam.ID)
	case cam.Approval != nil:
		return c.validateApproval(*cam.Approval, f("approval"), fmt.Sprintf("camera %q", cam.ID))
	}
	return nil
}

func (c *Config) validatePreset(cam *CameraConfig, p *PresetConfig, i, j int, toks map[string]bool) error {
	pf := func(name string) string { return fmt.Sprintf("cameras[%d].presets[%d].%s", i, j, name) }
	if p.Token == "" {
		return c.fieldError(pf("token"), "camera %q: required", cam.ID)
	}
	if toks[p.Token] {
		return c.fieldError(pf("token"), "camera %q: duplicate preset %q", cam.ID, p.Token)
	}
	toks[p.Token] = true
	pos := p.Position
	if pos.Pan < -1 || pos.Pan > 1 || pos.Tilt < -1 || pos.Tilt > 1 || pos.Zoom < 0 || pos.Zoom > 1 {
		return c.fieldError(pf("position"), "camera %q preset %q: outside the generic spaces (pan/tilt −1..1, zoom 0..1)", cam.ID, p.Token)
	}
	if p.MaxShift != 0 && (p.MaxShift < minShift || p.MaxShift > maxShift) {
		return c.fieldError(pf("max_shift"), "camera %q preset %q: %g out of %g..%g", cam.ID, p.Token, p.MaxShift, minShift, maxShift)
	}
	if p.Tolerance < 0 || p.Tolerance > 0.5 {
		return c.fieldError(pf("tolerance"), "camera %q preset %q: %g out of (0, 0.5]", cam.ID, p.Token, p.Tolerance)
	}
	if err := c.validateApproval(p.Approval, pf("approval"), fmt.Sprintf("camera %q preset %q", cam.ID, p.Token)); err != nil {
		return err
	}
	return c.validateMaskSet(pf("masks"), maskspec.MaskSet{Camera: cam.ID, Preset: p.Token, Masks: p.Masks})
}

// maxLockInterval bounds how long a PTZ camera's position may go unread.
const maxLockInterval = 2 * time.Second

func (c *Config) validateLock(cam *CameraConfig, f func(string) string) error {
	if cam.MaxShift != 0 && (len(cam.Presets) > 0 || cam.MaxShift < minShift || cam.MaxShift > maxShift) {
		return c.fieldError(f("max_shift"), "camera %q: %g: a fixed camera's override in %g..%g (a PTZ camera sets it per preset)", cam.ID, cam.MaxShift, minShift, maxShift)
	}
	// ER-3.2: a move by hand is seen within one poll (events and the
	// per-frame view check may see it sooner): at most 2 s.
	if v := time.Duration(cam.PTZLock.Interval); v != 0 && (v < 100*time.Millisecond || v > maxLockInterval) {
		return c.fieldError(f("ptz_lock.interval"), "camera %q: %v out of 100ms..%v (ER-3.2)", cam.ID, v, maxLockInterval)
	}
	return nil
}

// validateRecord checks recording and retention (G-3.4, G-3.2.1).
func (c *Config) validateRecord(cam *CameraConfig, f func(string) string) error {
	r := &cam.Record
	if !r.Enabled {
		return nil
	}
	if c.Outputs.RecordDir == "" {
		return c.fieldError("outputs.record_dir", "required: camera %q records", cam.ID)
	}
	if s := time.Duration(r.Segment); s != 0 && (s < 10*time.Second || s > time.Hour) {
		return c.fieldError(f("record.segment"), "camera %q: %v out of 10s..1h", cam.ID, s)
	}
	v := time.Duration(r.Retention)
	if v < MinRetention {
		return c.fieldError(f("record.retention"), "camera %q: %v is below %v", cam.ID, v, MinRetention)
	}
	if v > ReasonedRetention && strings.TrimSpace(r.RetentionReason) == "" {
		return c.fieldError(f("record.retention_reason"), "camera %q: retention %v is over 24h: state the reason (closure, holidays, police request, high-risk site) (G-3.4)", cam.ID, v)
	}
	if v > PriorCheckRetention && strings.TrimSpace(r.PriorCheckRef) == "" {
		return c.fieldError(f("record.retention"), "camera %q: %v is over 7 days: refused without prior_check_ref, the reference of the Garante's prior check (G-3.4, G-3.2.1)", cam.ID, v)
	}
	return nil
}

func (c *Config) validateSchedule(cam *CameraConfig, f func(string) string) error {
	if cam.Schedule == nil {
		return nil
	}
	if err := cam.Schedule.compile(); err != nil {
		return c.fieldError(f("schedule"), "camera %q: %v", cam.ID, err)
	}
	return nil
}

func (c *Config) validateEncoder(cam *CameraConfig, f func(string) string) error {
	if err := codec.CheckEncoder(cam.Encoder.Element, codec.Codec(c.Outputs.Codec)); err != nil {
		return c.fieldError(f("encoder.element"), "camera %q: %v", cam.ID, err)
	}
	if fps := cam.Encoder.FPS; fps != 0 && (fps < 1 || fps > 120) {
		return c.fieldError(f("encoder.fps"), "camera %q: %d out of 1..120 (0: the camera's)", cam.ID, fps)
	}
	return nil
}

// validateCapture checks the capture's bounds (zero: the default).
func (c *Config) validateCapture(cam *CameraConfig, f func(string) string) error {
	for _, b := range []struct {
		field    string
		v        Duration
		min, max time.Duration
	}{
		{"capture.open_timeout", cam.Capture.OpenTimeout, time.Second, 2 * time.Minute},
		{"capture.read_timeout", cam.Capture.ReadTimeout, 500 * time.Millisecond, time.Minute},
		{"capture.video_lost_after", cam.Capture.VideoLostAfter, time.Second, 10 * time.Minute},
	} {
		if v := time.Duration(b.v); v != 0 && (v < b.min || v > b.max) {
			return c.fieldError(f(b.field), "camera %q: %v out of %v..%v", cam.ID, v, b.min, b.max)
		}
	}
	return nil
}
