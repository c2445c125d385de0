package anonymise_test

import (
	"testing"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// TestG45_LateDetectionMasksTheWholeZone: a detection that is not back
// within its deadline (a detector held 300 ms against 20 ms) masks the
// whole dynamic_zone for the frames it was late for, and only the zone.
func TestG45_LateDetectionMasksTheWholeZone(t *testing.T) {
	anonymise.SlowDetector(300 * time.Millisecond)
	defer anonymise.SlowDetector(0)
	const w, h = 640, 360
	zone := []maskspec.Point{{X: 0.25, Y: 0.25}, {X: 0.75, Y: 0.25}, {X: 0.75, Y: 0.75}, {X: 0.25, Y: 0.75}}
	st, err := anonymise.New(anonymise.Config{Camera: "late", Detectors: []anonymise.Detector{anonymise.Motion}, Zone: zone,
		Style: maskspec.StyleFill, Color: magenta, Deadline: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, scene := masking.NewFrame(w, h), masking.NewFrame(w, h)
	y, u, v := scene.Planes()
	for j := range y {
		y[j] = byte(60 + (j*7)%120) // textured, bright enough
	}
	for j := range u {
		u[j], v[j] = 128, 128
	}
	for i := 0; i < 3; i++ {
		copy(f.Data, scene.Data)
		if err := st.Apply(f); err != nil {
			t.Fatal(err)
		}
		if !isMasked(f, w/2, h/2) || !isMasked(f, w/4+4, h/4+4) || !isMasked(f, 3*w/4-4, 3*h/4-4) {
			t.Fatalf("frame %d: the zone is not masked whole", i)
		}
		if isMasked(f, w/8, h/8) || isMasked(f, 7*w/8, 7*h/8) {
			t.Fatalf("frame %d: masked outside the zone", i)
		}
	}
	s := st.Stats()
	if s.Reasons[anonymise.WhyLate] == 0 || s.Fallbacks == 0 {
		t.Errorf("no late fallback counted: %+v", s)
	}
}

// TestG45_ConfigRefusals: every bad setting is refused, naming the camera
// and the field.
func TestG45_ConfigRefusals(t *testing.T) {
	ok := func() anonymise.Config {
		return anonymise.Config{Camera: "cam-1", Detectors: []anonymise.Detector{anonymise.Motion}, Zone: wholeFrame}
	}
	cases := []struct {
		name, want string
		edit       func(c *anonymise.Config)
	}{
		{"no detector", "detectors", func(c *anonymise.Config) { c.Detectors = nil }},
		{"unknown detector", "detectors", func(c *anonymise.Config) { c.Detectors = []anonymise.Detector{"yolo"} }},
		{"cascade missing", "opencv-data", func(c *anonymise.Config) {
			c.Detectors = []anonymise.Detector{anonymise.FaceFrontal}
			c.CascadeDir = t.TempDir()
		}},
		{"no zone", "dynamic_zone", func(c *anonymise.Config) { c.Zone = nil }},
		{"zone outside", "dynamic_zone", func(c *anonymise.Config) { c.Zone[1].X = 1.5 }},
		{"weak pixelate", "block", func(c *anonymise.Config) { c.Style, c.Block = maskspec.StylePixelate, 2 }},
		{"full", "style", func(c *anonymise.Config) { c.Style = maskspec.StyleFull }},
		{"every", "every", func(c *anonymise.Config) { c.Every = 100 }},
		{"margin", "margin", func(c *anonymise.Config) { c.Margin = -1 }},
		{"deadline", "deadline", func(c *anonymise.Config) { c.Deadline = time.Millisecond }},
		{"zone and zones", "dynamic_zone", func(c *anonymise.Config) { c.Zones = map[string][]maskspec.Point{"1": wholeFrame} }},
		{"preset zone outside", `dynamic_zone of preset "2"`, func(c *anonymise.Config) {
			c.Zone, c.Zones = nil, map[string][]maskspec.Point{"1": wholeFrame, "2": {{X: 0, Y: 0}, {X: 2, Y: 0}, {X: 1, Y: 1}}}
		}},
	}
	for _, tc := range cases {
		c := ok()
		c.Zone = append([]maskspec.Point(nil), c.Zone...)
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !contains(err.Error(), tc.want) || !contains(err.Error(), "cam-1") {
			t.Errorf("%s: got %v, want an error naming cam-1 and %q", tc.name, err, tc.want)
		}
	}
	c := ok()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
