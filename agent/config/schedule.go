package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // schedules need zone data even on a minimal gateway
)

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
