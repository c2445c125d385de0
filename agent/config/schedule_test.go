package config

import (
	"testing"
	"time"
)

// G-4.3: a camera emits video only within its active hours, in its time
// zone; a holiday replaces its weekday; a missing weekday is off.
func TestG43_ScheduleActive(t *testing.T) {
	s := &ScheduleConfig{Timezone: "Europe/Rome",
		Weekly:   map[string][]string{"mon": {"00:00-07:30", "18:00-24:00"}, "sat": {"00:00-24:00"}},
		Holidays: []HolidayConfig{{Date: "2026-12-07", Hours: []string{"00:00-24:00"}}, {Date: "2026-12-14"}}}
	if err := s.compile(); err != nil {
		t.Fatal(err)
	}
	rome, _ := time.LoadLocation("Europe/Rome")
	at := func(d string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", d, rome)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, c := range []struct {
		when string
		want bool
	}{
		{"2026-11-23 07:29", true}, {"2026-11-23 07:30", false}, {"2026-11-23 12:00", false}, {"2026-11-23 18:00", true}, {"2026-11-23 23:59", true},
		{"2026-11-24 03:00", false}, // tuesday: not listed
		{"2026-11-28 12:00", true},  // saturday
		{"2026-12-07 12:00", true},  // monday holiday, all day
		{"2026-12-14 03:00", false}, // monday holiday without hours: off
		{"2026-03-30 06:00", true},  // monday after the DST change, local time
	} {
		if got := s.Active(at(c.when)); got != c.want {
			t.Errorf("%s: active %v, want %v", c.when, got, c.want)
		}
	}
	// The same instant in UTC: 2026-11-23 17:30 UTC is 18:30 in Rome.
	if !s.Active(time.Date(2026, 11, 23, 17, 30, 0, 0, time.UTC)) {
		t.Error("time zone not applied")
	}
	var none *ScheduleConfig
	if !none.Active(time.Now()) {
		t.Error("no schedule must mean always on")
	}
	for _, bad := range []*ScheduleConfig{{}, {Timezone: "Mars/Olympus"}, {Timezone: "UTC", Weekly: map[string][]string{"mon": {"18:00-07:00"}}},
		{Timezone: "UTC", Weekly: map[string][]string{"lun": {"08:00-09:00"}}}, {Timezone: "UTC", Weekly: map[string][]string{"mon": {"08:00-10:00", "09:00-11:00"}}},
		{Timezone: "UTC", Holidays: []HolidayConfig{{Date: "25/12/2026"}}}} {
		if bad.compile() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
