package spec

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// A data subject's copy (G-3.5): a time range of one camera in which the
// operator marks the requester; the copy masks every other person seen
// and every plate. These are the request and the report, without OpenCV,
// so the recordings' socket (agent/recserve) and the CLI share them with
// masking/anonymise, which does the frame work.

// Mark is where the operator marked the data subject: a box on one frame,
// or a point at one moment. Coordinates are normalised to the frame:
// x from the left edge (0) to the right edge (1), y from the top (0) to
// the bottom (1); a box is its top-left corner, width and height.
type Mark struct {
	// Frame is the frame of the copy the mark is on (0 = the first frame
	// at or after the range's start); -1 when At or Offset says when.
	Frame int `json:"frame"`
	// At is a wall-clock moment in the range (RFC 3339).
	At time.Time `json:"time,omitzero"`
	// Offset is a moment given as a duration from the range's start.
	Offset time.Duration `json:"offset,omitempty"`
	// Box (x, y, w, h) or Point (x, y); exactly one is set.
	Box   *[4]float64 `json:"box,omitempty"`
	Point *[2]float64 `json:"point,omitempty"`
}

// MarkSyntax is how a mark is written, for help texts and errors.
const MarkSyntax = `"frame=N,box=x,y,w,h" or "time=T,point=x,y"`

// ParseMark reads a mark: "frame=N" or "time=T" (RFC 3339, or a duration
// from the range's start such as 12.5s), then "box=x,y,w,h" or
// "point=x,y" in normalised coordinates ([0,1], from the top-left).
// Either "when" goes with either shape.
func ParseMark(s string) (Mark, error) {
	m := Mark{Frame: -1}
	bad := func(format string, a ...any) (Mark, error) {
		return Mark{}, fmt.Errorf("mark %q: %s (want %s)", cut(s), fmt.Sprintf(format, a...), MarkSyntax)
	}
	fields := splitMark(strings.ReplaceAll(s, " ", ""))
	if len(fields) != 2 {
		return bad("two parts: when and where")
	}
	when, where := fields[0], fields[1]
	switch {
	case strings.HasPrefix(when, "frame="):
		n, err := strconv.Atoi(strings.TrimPrefix(when, "frame="))
		if err != nil || n < 0 {
			return bad("frame: a frame number from 0")
		}
		m.Frame = n
	case strings.HasPrefix(when, "time="):
		v := strings.TrimPrefix(when, "time=")
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			m.At = t.UTC()
		} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			m.Offset = d
		} else {
			return bad("time: an RFC 3339 time or a duration from --from such as 12.5s")
		}
	default:
		return bad("it starts with frame= or time=")
	}
	k, v, _ := strings.Cut(where, "=")
	nums, err := unitNumbers(v)
	switch {
	case err != nil:
		return bad("%s: %v", k, err)
	case k == "box" && len(nums) == 4:
		if nums[2] <= 0 || nums[3] <= 0 || nums[0]+nums[2] > 1 || nums[1]+nums[3] > 1 {
			return bad("box: a width and height above 0, inside the frame")
		}
		m.Box = &[4]float64{nums[0], nums[1], nums[2], nums[3]}
	case k == "point" && len(nums) == 2:
		m.Point = &[2]float64{nums[0], nums[1]}
	default:
		return bad("then box=x,y,w,h or point=x,y")
	}
	return m, nil
}

// splitMark splits "frame=N,box=x,y,w,h" at the comma before the shape.
func splitMark(s string) []string {
	for _, k := range []string{",box=", ",point="} {
		if i := strings.Index(s, k); i > 0 {
			return []string{strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])}
		}
	}
	return []string{s}
}

// unitNumbers reads comma-separated numbers in [0,1].
func unitNumbers(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			return nil, fmt.Errorf("%q is not a number in [0,1]", cut(f))
		}
		out = append(out, v)
	}
	return out, nil
}

func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// String writes the mark back in ParseMark's syntax.
func (m Mark) String() string {
	var b strings.Builder
	switch {
	case m.Frame >= 0:
		fmt.Fprintf(&b, "frame=%d", m.Frame)
	case !m.At.IsZero():
		b.WriteString("time=" + m.At.Format(time.RFC3339Nano))
	default:
		b.WriteString("time=" + m.Offset.String())
	}
	if m.Box != nil {
		fmt.Fprintf(&b, ",box=%g,%g,%g,%g", m.Box[0], m.Box[1], m.Box[2], m.Box[3])
	} else if m.Point != nil {
		fmt.Fprintf(&b, ",point=%g,%g", m.Point[0], m.Point[1])
	}
	return b.String()
}

// SubjectSegment is one recorded segment covering part of the range:
// Feed writes its decrypted (masked, as recorded) video to w.
type SubjectSegment struct {
	Name  string
	Start time.Time
	Feed  func(w io.Writer) error
}

// SubjectJob is one data subject's copy to make.
type SubjectJob struct {
	Camera   string
	From, To time.Time
	Mark     Mark
	Segments []SubjectSegment // in time order
	// TempDir holds the encoded copy until it is sent (the MP4's index
	// is written last); private to the agent.
	TempDir string
}

// MaxSubjectRange bounds the range of one copy (decoded twice, detected
// on every frame).
const MaxSubjectRange = 15 * time.Minute

// Check validates the job's range and mark; errors name the field.
func (j *SubjectJob) Check() error {
	switch {
	case j.From.IsZero() || j.To.IsZero():
		return fmt.Errorf("--from and --to are required")
	case !j.To.After(j.From):
		return fmt.Errorf("--to %s is not after --from %s", j.To.Format(time.RFC3339), j.From.Format(time.RFC3339))
	case j.To.Sub(j.From) > MaxSubjectRange:
		return fmt.Errorf("--from..--to spans %v, at most %v per copy", j.To.Sub(j.From), MaxSubjectRange)
	case j.Mark.Box == nil && j.Mark.Point == nil:
		return fmt.Errorf("--mark: %s is required", MarkSyntax)
	case !j.Mark.At.IsZero() && (j.Mark.At.Before(j.From) || !j.Mark.At.Before(j.To)):
		return fmt.Errorf("--mark: time %s is outside --from..--to", j.Mark.At.Format(time.RFC3339))
	case j.Mark.Offset >= j.To.Sub(j.From):
		return fmt.Errorf("--mark: time +%v is past --to", j.Mark.Offset)
	}
	return nil
}

// Fallbacks of a frame in a subject copy.
const (
	// SubjectTracked: the subject was followed; every other box masked.
	SubjectTracked = "tracked"
	// SubjectUncertain: the subject's track was not confident on this
	// frame; every box detected was masked, the subject's too.
	SubjectUncertain = "uncertain"
	// SubjectWholeFrame: the detectors could not be trusted on this frame
	// (too dark, or they failed); the whole frame was masked.
	SubjectWholeFrame = "whole-frame"
)

// SubjectFrame is what was done to one frame of the copy. Boxes are
// normalised [x, y, w, h].
type SubjectFrame struct {
	N       int          `json:"n"`
	Time    time.Time    `json:"time"`
	Segment string       `json:"segment"`
	State   string       `json:"state"` // SubjectTracked, SubjectUncertain, SubjectWholeFrame
	Why     string       `json:"why,omitempty"`
	Subject *[4]float64  `json:"subject,omitempty"`
	Masked  [][4]float64 `json:"masked,omitempty"`
	Plates  int          `json:"plates,omitempty"` // of Masked, plate boxes
}

// SubjectReport is the frame work of a subject copy, for its sidecar.
type SubjectReport struct {
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FPS       float64 `json:"fps"`
	Frames    int     `json:"frames"`
	Video     string  `json:"video"` // codec, pixel format, container
	Mark      Mark    `json:"mark"`
	MarkFrame int     `json:"mark_frame"`
	Method    string  `json:"method"`
	// Settings: the detectors and how boxes were grown and masked.
	Detectors   []Detector `json:"detectors"`
	DetectWidth int        `json:"detect_width"`
	Margin      float64    `json:"margin"`
	Style       string     `json:"style"`
	Block       int        `json:"block,omitempty"`
	Strength    int        `json:"strength,omitempty"`
	MinLuma     float64    `json:"min_luma"`
	// Counts of frames by state, and the frames that fell back.
	Tracked    int            `json:"tracked_frames"`
	Uncertain  []int          `json:"uncertain_frames"`
	WholeFrame []int          `json:"whole_frames"`
	PerFrame   []SubjectFrame `json:"per_frame"`
}
