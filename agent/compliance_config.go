package agent

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // schedules need zone data even on a minimal gateway

	"velo/agent/audit"
	"velo/masking/maskspec"
)

// Retention limits (REGULATION.md G-3.4, G-3.2.1).
const (
	DefaultRetention = 24 * time.Hour
	MinRetention     = time.Hour
	// Past ReasonedRetention a reason is required; past PriorCheckRetention
	// the Garante's prior-check reference as well.
	ReasonedRetention   = 24 * time.Hour
	PriorCheckRetention = 7 * 24 * time.Hour
)

func (c *Config) validateAudit() error {
	a := &c.Audit
	if a.Keep == 0 {
		a.Keep = Duration(audit.MinKeep)
	}
	if time.Duration(a.Keep) < audit.MinKeep {
		return c.fieldError("audit.keep", "%v is below six months (%v): G-4.6(1) keeps the audit log at least six months", time.Duration(a.Keep), audit.MinKeep)
	}
	if a.HeadInterval == 0 {
		a.HeadInterval = Duration(5 * time.Minute)
	}
	if v := time.Duration(a.HeadInterval); v < 10*time.Second || v > time.Hour {
		return c.fieldError("audit.head_interval", "%v out of 10s..1h", v)
	}
	if a.MaxFileMB == 0 {
		a.MaxFileMB = 8
	}
	if a.MaxFileMB < 1 || a.MaxFileMB > 1024 {
		return c.fieldError("audit.max_file_mb", "%d out of 1..1024", a.MaxFileMB)
	}
	return nil
}

func (c *Config) validateRecord(cam *CameraConfig, f func(string) string) error {
	r := &cam.Record
	if r.Retention == 0 {
		r.Retention = Duration(DefaultRetention)
	}
	v := time.Duration(r.Retention)
	if !r.Enabled {
		return nil
	}
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

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// span is [from, to) in minutes since local midnight.
type span struct{ from, to int }

func parseSpans(hours []string) ([]span, error) {
	var out []span
	for _, h := range hours {
		a, b, ok := strings.Cut(strings.TrimSpace(h), "-")
		from, err1 := parseHM(a)
		to, err2 := parseHM(b)
		if !ok || err1 != nil || err2 != nil || from >= to {
			return nil, fmt.Errorf("%q is not HH:MM-HH:MM with start before end (split a range crossing midnight in two)", h)
		}
		out = append(out, span{from, to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from < out[j].from })
	for i := 1; i < len(out); i++ {
		if out[i].from < out[i-1].to {
			return nil, fmt.Errorf("hours overlap: %v", hours)
		}
	}
	return out, nil
}

func parseHM(s string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); n != 2 || err != nil || h < 0 || h > 24 || m < 0 || m > 59 || h == 24 && m != 0 || len(strings.TrimSpace(s)) != 5 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}

func (s *ScheduleConfig) compile() error {
	if s.Timezone == "" {
		return fmt.Errorf("timezone: required (IANA name, e.g. Europe/Rome)")
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return fmt.Errorf("timezone: %q: %v", s.Timezone, err)
	}
	s.loc = loc
	s.weekly = [7][]span{}
	for day, hours := range s.Weekly {
		wd, ok := weekdays[strings.ToLower(day)]
		if !ok {
			return fmt.Errorf("weekly: %q is not a day (mon, tue, wed, thu, fri, sat, sun)", day)
		}
		sp, err := parseSpans(hours)
		if err != nil {
			return fmt.Errorf("weekly.%s: %v", day, err)
		}
		s.weekly[wd] = sp
	}
	s.holiday = map[string][]span{}
	for i, h := range s.Holidays {
		if _, err := time.Parse("2006-01-02", h.Date); err != nil {
			return fmt.Errorf("holidays[%d].date: %q is not YYYY-MM-DD", i, h.Date)
		}
		if _, dup := s.holiday[h.Date]; dup {
			return fmt.Errorf("holidays[%d].date: %s twice", i, h.Date)
		}
		sp, err := parseSpans(h.Hours)
		if err != nil {
			return fmt.Errorf("holidays[%d].hours: %v", i, err)
		}
		s.holiday[h.Date] = sp
	}
	return nil
}

// Active reports whether the schedule allows video at t (a nil schedule:
// always).
func (s *ScheduleConfig) Active(t time.Time) bool {
	if s == nil {
		return true
	}
	lt := t.In(s.loc)
	spans, ok := s.holiday[lt.Format("2006-01-02")]
	if !ok {
		spans = s.weekly[lt.Weekday()]
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, sp := range spans {
		if m >= sp.from && m < sp.to {
			return true
		}
	}
	return false
}

// NextActive is the first minute after t (within limit) when the
// schedule is active, or nil.
func (s *ScheduleConfig) NextActive(t time.Time, limit time.Duration) *time.Time {
	if s == nil {
		return &t
	}
	for m := t.Truncate(time.Minute).Add(time.Minute); m.Sub(t) <= limit; m = m.Add(time.Minute) {
		if s.Active(m) {
			return &m
		}
	}
	return nil
}

// Location is the schedule's time zone.
func (s *ScheduleConfig) Location() *time.Location { return s.loc }

// comparable is the camera's config without compiled state, for deciding
// whether a reload changed it.
func (c CameraConfig) comparable() CameraConfig {
	if c.Schedule != nil {
		s := ScheduleConfig{Timezone: c.Schedule.Timezone, Weekly: c.Schedule.Weekly, Holidays: c.Schedule.Holidays}
		c.Schedule = &s
	}
	return c
}

// EventViewChanged records an approved view (a preset, or a fixed
// camera's view) added, changed or removed by a reload, with its approval
// (ER-4.7: a repositioning is filed beforehand and recorded).
const EventViewChanged EventKind = "view_changed"

// viewChange is one approved view that a reload adds, changes or removes.
type viewChange struct {
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

// viewChanges compares a camera's approved views before (old, nil for a
// new camera) and after a reload. A view whose position, tolerance or
// masks change while keeping the same approval document is refused: the
// change needs its own approval (ER-4.7).
func viewChanges(old, nc *CameraConfig) ([]viewChange, error) {
	before := map[string]view{}
	if old != nil {
		before = old.views()
	}
	after := nc.views()
	var out []viewChange
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
			out = append(out, viewChange{nc.ID, tok, "added", v.approval})
		case b.pos != v.pos || b.tolerance != v.tolerance || !reflect.DeepEqual(b.masks, v.masks):
			if b.approval.Document == v.approval.Document {
				return nil, fmt.Errorf("camera %q %s: position or masks changed but the approval document is still %q: a repositioning needs its own approval (ER-4.7)", nc.ID, name(tok), v.approval.Document)
			}
			out = append(out, viewChange{nc.ID, tok, "changed", v.approval})
		case b.approval != v.approval:
			out = append(out, viewChange{nc.ID, tok, "approval updated", v.approval})
		}
	}
	for _, tok := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[tok]; !ok {
			out = append(out, viewChange{nc.ID, tok, "removed", before[tok].approval})
		}
	}
	return out, nil
}
