package codec

import (
	"strings"
	"testing"
)

// Every encoder of the table gets its bitrate in its own unit and its GOP.
func TestEncoderUnitsPerElement(t *testing.T) {
	st := Settings{BitrateKbps: 2000, GOP: 20, FPS: 10}
	want := map[string][]string{
		"x264enc":       {"bitrate=2000 ", "key-int-max=20"},
		"x265enc":       {"bitrate=2000 ", "key-int-max=20"},
		"openh264enc":   {"bitrate=2000000 ", "gop-size=20"},
		"mpph264enc":    {"bps=2000000 ", "gop=20"},
		"mpph265enc":    {"bps=2000000 ", "gop=20"},
		"nvv4l2h264enc": {"bitrate=2000000 ", "iframeinterval=20"},
		"nvv4l2h265enc": {"bitrate=2000000 ", "iframeinterval=20"},
		"v4l2h264enc":   {"video_bitrate=2000000,", "h264_i_frame_period=20"},
		"v4l2h265enc":   {"video_bitrate=2000000,", "video_gop_size=20"},
		"vaapih264enc":  {"bitrate=2000 ", "keyframe-period=20"},
		"vaapih265enc":  {"bitrate=2000 ", "keyframe-period=20"},
		"nvh264enc":     {"bitrate=2000 ", "gop-size=20"},
		"nvh265enc":     {"bitrate=2000 ", "gop-size=20"},
	}
	seen := 0
	for _, c := range All {
		for _, e := range Encoders(c) {
			s := EncoderString(e, "", st) + " "
			w, ok := want[e.Name]
			if !ok {
				t.Errorf("%s: no expected units in this test", e.Name)
				continue
			}
			seen++
			for _, frag := range w {
				if !strings.Contains(s, frag) {
					t.Errorf("%s: %q lacks %q", e.Name, s, frag)
				}
			}
			if strings.Contains(s, "{") {
				t.Errorf("%s: placeholder left in %q", e.Name, s)
			}
			if err := CheckEncoder(e.Template, c); err != nil {
				t.Errorf("%s: the table's own template refused: %v", e.Name, err)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d encoders checked, want %d", seen, len(want))
	}
	// The hardware ones come first, software last.
	for _, c := range All {
		for _, list := range [][]Element{Encoders(c), Decoders(c)} {
			sw := false
			for _, e := range list {
				if e.Hardware() && sw {
					t.Errorf("%s: %s after a software element: hardware first, software last", c, e.Name)
				}
				sw = sw || !e.Hardware()
			}
			if !sw || !list[0].Hardware() {
				t.Errorf("%s: want hardware elements then a software fallback", c)
			}
		}
	}
}

// A custom element string: {bitrate} in the element's own unit, the
// explicit units everywhere, and no silent drop of bitrate or GOP.
func TestCustomEncoderString(t *testing.T) {
	st := Settings{BitrateKbps: 1500, GOP: 30, FPS: 15}
	x264, _ := LookupEncoder("x264enc")
	for _, tc := range []struct{ custom, want string }{
		{"openh264enc bitrate={bitrate} gop-size={gop}", "openh264enc bitrate=1500000 gop-size=30"},
		{"x264enc bitrate={bitrate} key-int-max={gop}", "x264enc bitrate=1500 key-int-max=30"},
		{"myenc rate={bitrate_bps} kbps={bitrate_kbps} g={gop} f={fps}", "myenc rate=1500000 kbps=1500 g=30 f=15"},
	} {
		if err := CheckEncoder(tc.custom, H264); err != nil {
			t.Errorf("%q refused: %v", tc.custom, err)
		}
		if got := EncoderString(x264, tc.custom, st); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.custom, got, tc.want)
		}
	}
	for _, tc := range []struct{ custom, why string }{
		{"x264enc bitrate=3000 key-int-max={gop}", "no bitrate placeholder"},
		{"openh264enc bitrate={bitrate_bps}", "no {gop} placeholder"},
		{"myenc rate={bitrate} g={gop}", "unknown for an element outside the table"},
		{"x264enc bitrate={bitrate} key-int-max={gop} ! fakesink", "one element"},
		{"x264enc bitrate={birate} key-int-max={gop}", "unknown placeholder {birate}"},
		{"x265enc bitrate={bitrate} key-int-max={gop}", "encodes H265"},
	} {
		err := CheckEncoder(tc.custom, H264)
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%q: %v, want an error saying %q", tc.custom, err, tc.why)
		}
	}
}

func TestParseAndElements(t *testing.T) {
	for in, want := range map[string]Codec{"H264": H264, "h.264": H264, "AVC": H264, "H265": H265, "hevc": H265, "H.265": H265} {
		if c, err := Parse(in); err != nil || c != want {
			t.Errorf("Parse(%q) = %q, %v", in, c, err)
		}
	}
	if _, err := Parse("MJPEG"); err == nil {
		t.Error("MJPEG parsed")
	}
	if H265.Depay() != "rtph265depay" || H265.Parser() != "h265parse" || H264.Depay() != "rtph264depay" {
		t.Error("element names")
	}
	for _, c := range All {
		d := Decoders(c)
		if last := d[len(d)-1]; last.Hardware() || !strings.HasPrefix(last.Name, "avdec_") {
			t.Errorf("%s: software decoder must come last: %v", c, last)
		}
	}
}
