package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"velo/masking/maskspec"
)

// SameCamera reports whether a reload leaves a camera's settings as they
// were (compiled schedules aside): false means its worker restarts.
func SameCamera(a, b *CameraConfig) bool { return reflect.DeepEqual(a.comparable(), b.comparable()) }

func (c CameraConfig) comparable() CameraConfig {
	if c.Schedule != nil {
		s := ScheduleConfig{Timezone: c.Schedule.Timezone, Weekly: c.Schedule.Weekly, Holidays: c.Schedule.Holidays}
		c.Schedule = &s
	}
	return c
}

// ViewChange is one approved view that a reload adds, changes or removes.
type ViewChange struct {
	Camera, Preset, What string
	Approval             ApprovalConfig
}

// view is what an approval covers: where the camera looks and what is
// masked.
type view struct {
	pos       [3]float64
	tolerance float64
	masks     []maskspec.Mask
	approval  ApprovalConfig
}

func (c *CameraConfig) views() map[string]view {
	out := map[string]view{}
	if len(c.Presets) == 0 {
		v := view{masks: c.Masks}
		if c.Approval != nil {
			v.approval = *c.Approval
		}
		out[""] = v
	}
	for _, p := range c.Presets {
		out[p.Token] = view{pos: [3]float64{p.Position.Pan, p.Position.Tilt, p.Position.Zoom}, tolerance: p.Tolerance, masks: p.Masks, approval: p.Approval}
	}
	return out
}

// ViewChanges compares a camera's approved views before (old, nil for a
// new camera) and after a reload. A view whose position, tolerance or
// masks change while keeping the same approval document is refused: the
// change needs its own approval (ER-4.7).
func ViewChanges(old, nc *CameraConfig) ([]ViewChange, error) {
	before := map[string]view{}
	if old != nil {
		before = old.views()
	}
	after := nc.views()
	var out []ViewChange
	name := func(tok string) string {
		if tok == "" {
			return "the fixed view"
		}
		return fmt.Sprintf("preset %q", tok)
	}
	for _, tok := range slices.Sorted(maps.Keys(after)) {
		v := after[tok]
		b, had := before[tok]
		switch {
		case !had:
			out = append(out, ViewChange{nc.ID, tok, "added", v.approval})
		case b.pos != v.pos || b.tolerance != v.tolerance || !reflect.DeepEqual(b.masks, v.masks):
			if b.approval.Document == v.approval.Document {
				return nil, fmt.Errorf("camera %q %s: position or masks changed but the approval document is still %q: a repositioning needs its own approval (ER-4.7)", nc.ID, name(tok), v.approval.Document)
			}
			out = append(out, ViewChange{nc.ID, tok, "changed", v.approval})
		case b.approval != v.approval:
			out = append(out, ViewChange{nc.ID, tok, "approval updated", v.approval})
		}
	}
	for _, tok := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[tok]; !ok {
			out = append(out, ViewChange{nc.ID, tok, "removed", before[tok].approval})
		}
	}
	return out, nil
}

// MaskSets returns the camera's mask sets: one per approved preset, or one
// camera-wide set (preset "") for a fixed camera.
func (c *CameraConfig) MaskSets() []maskspec.MaskSet {
	return c.maskSets()
}

// StillMaskSets are the mask sets of a single frame written outside the
// live stream (mask preview, dossier snapshots): MaskSets, plus the whole
// dynamic_zone where dynamic masking of people is on. One frame has no
// detections to rely on, so the zone is masked whole, as when the live
// detector falls behind (G-4.5, G-5.3).
func (c *CameraConfig) StillMaskSets() []maskspec.MaskSet {
	sets := c.maskSets()
	d := c.Dynamic
	if d == nil {
		return sets
	}
	for i := range sets {
		poly := d.Zone // a fixed camera's; a PTZ camera's per preset
		for _, p := range c.Presets {
			if p.Token == sets[i].Preset {
				poly = p.DynamicZone
			}
		}
		if len(poly) < 3 {
			continue
		}
		zone := maskspec.Mask{Name: "dynamic_zone", Polygon: poly, Style: d.Style, Color: d.Color, Block: d.Block, Strength: d.Strength}
		sets[i].Masks = append(append([]maskspec.Mask(nil), sets[i].Masks...), zone)
	}
	return sets
}

func (c *CameraConfig) maskSets() []maskspec.MaskSet {
	if len(c.Presets) == 0 {
		return []maskspec.MaskSet{{Camera: c.ID, Masks: c.Masks}}
	}
	var sets []maskspec.MaskSet
	for _, p := range c.Presets {
		sets = append(sets, maskspec.MaskSet{Camera: c.ID, Preset: p.Token, Masks: p.Masks})
	}
	return sets
}
