package masking_test

import (
	"sync"
	"testing"

	"velo/masking"
	"velo/masking/codec"
)

// sizeCounter is a StreamPublisher that counts the bytes published.
type sizeCounter struct {
	mu    sync.Mutex
	bytes int
	aus   int
}

func (s *sizeCounter) PublishAU(_ string, au [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range au {
		s.bytes += len(n) + 4
	}
	s.aus++
	return nil
}
func (s *sizeCounter) Unpublish(string)                   {}
func (s *sizeCounter) SetCodec(string, codec.Codec) error { return nil }

// The bitrate reaches each software encoder in its own unit: asked for
// 600 kbit/s, each produces about that (openh264enc takes bit/s: given
// kbit/s as before, it produced a quarter of the rate).
func TestEncoderBitrateUnitsMeasured(t *testing.T) {
	const w, h, fps, frames, kbps = 320, 240, 10, 40, 600
	grain := make([]byte, w*h+frames*331)
	seed := uint32(1)
	for j := range grain {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		grain[j] = byte((j%w)*3+(j/w)*5) ^ byte(seed&0x1f)
	}
	for _, name := range []string{"x264enc", "openh264enc", "x265enc"} {
		e, _ := codec.LookupEncoder(name)
		pub := &sizeCounter{}
		enc, err := masking.OpenEncoder(masking.EncoderConfig{Camera: name, Width: w, Height: h, FPS: fps, Codec: e.Codec,
			Element: e.Template, BitrateKbps: kbps, Relay: pub})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := masking.NewFrame(w, h)
		f.Masked = true
		for i := 0; i < frames; i++ {
			// A texture with grain that moves: hard enough to need the
			// whole budget (a slice of the noise, shifted every frame).
			y, _, _ := f.Planes()
			copy(y, grain[i*331:])
			if err := enc.Write(f); err != nil {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatalf("%s: close: %v", name, err)
		}
		got := float64(pub.bytes*8) / (float64(frames) / fps) / 1000
		t.Logf("%s: asked %d kbit/s, produced %.0f kbit/s over %d access units", name, kbps, got, pub.aus)
		if got < 0.5*kbps || got > 1.6*kbps {
			t.Errorf("%s: asked %d kbit/s, produced %.0f kbit/s: the bitrate did not reach it in its unit", name, kbps, got)
		}
	}
}
