package spec

import (
	"strings"
	"testing"
	"time"
)

// A mark is read exactly as the help says, and anything else is refused
// with the syntax (G-3.5: the wrong person must not be followed because a
// mark was misread).
func TestParseMark(t *testing.T) {
	for _, c := range []struct{ in, back string }{
		{"frame=12,box=0.5,0.25,0.1,0.3", "frame=12,box=0.5,0.25,0.1,0.3"},
		{"time=12.5s,point=0.4,0.6", "time=12.5s,point=0.4,0.6"},
		{"time=2026-01-01T10:00:03Z,box=0,0,1,1", "time=2026-01-01T10:00:03Z,box=0,0,1,1"},
		{"frame=0, point=1,0", "frame=0,point=1,0"},
	} {
		m, err := ParseMark(c.in)
		if err != nil || m.String() != c.back {
			t.Errorf("%q: %v, read back %q", c.in, err, m.String())
		}
	}
	for _, bad := range []string{"", "box=0.1,0.1,0.1,0.1", "frame=-1,box=0.1,0.1,0.1,0.1", "frame=1", "frame=1,box=0.1,0.1,0.1",
		"frame=1,box=0.5,0.5,0.6,0.1", "frame=1,box=0.1,0.1,0,0.1", "frame=1,point=1.2,0.5", "frame=1,point=NaN,0.5",
		"time=yesterday,point=0.5,0.5", "time=-3s,point=0.5,0.5", "at=3,point=0.5,0.5", "frame=1,circle=0.5,0.5"} {
		if _, err := ParseMark(bad); err == nil || !strings.Contains(err.Error(), MarkSyntax) {
			t.Errorf("%q: %v, want a refusal with the syntax", bad, err)
		}
	}
	from := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	m, _ := ParseMark("time=2026-01-01T10:06:00Z,point=0.5,0.5")
	for _, c := range []struct {
		job  SubjectJob
		want string
	}{
		{SubjectJob{From: from, To: from.Add(5 * time.Minute), Mark: m}, "outside --from..--to"},
		{SubjectJob{From: from, To: from, Mark: m}, "is not after"},
		{SubjectJob{From: from, To: from.Add(16 * time.Minute), Mark: m}, "at most 15m0s"},
		{SubjectJob{From: from, To: from.Add(time.Minute)}, "--mark"},
	} {
		if err := c.job.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.job, err, c.want)
		}
	}
}
