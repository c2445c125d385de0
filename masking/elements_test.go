package masking_test

import (
	"testing"

	"velo/masking"
	"velo/masking/codec"
)

// The probe runs every element of the table: the software codecs the
// packages install work, and the hardware ones this machine lacks are
// reported missing, never chosen.
func TestProbeFindsTheCodecElements(t *testing.T) {
	els := masking.ProbeElements()
	byName := map[string]masking.ElementStatus{}
	for _, s := range els.List {
		byName[s.Codec+"/"+s.Role+"/"+s.Name] = s
		t.Logf("%s %s %s: ok %v (%s)", s.Codec, s.Role, s.Name, s.OK, s.Detail)
	}
	for _, k := range []string{"H264/encoder/x264enc", "H264/encoder/openh264enc", "H265/encoder/x265enc", "H264/decoder/avdec_h264", "H265/decoder/avdec_h265"} {
		if !byName[k].OK {
			t.Errorf("%s: %+v, want working", k, byName[k])
		}
	}
	if s := byName["H264/encoder/mpph264enc"]; s.OK || s.Detail != "missing" {
		t.Errorf("mpph264enc on an x86 machine: %+v", s)
	}
	for _, c := range codec.All {
		d, ok := els.Decoder(c)
		e, ok2 := els.Encoder(c)
		if !ok || !ok2 || d.Hardware() || e.Hardware() {
			t.Errorf("%s: decoder %q, encoder %q: want the software ones here", c, d.Name, e.Name)
		}
	}
	t.Logf("FIGURES element probe: %d elements in %.0f ms", len(els.List), els.TookMS)
}
