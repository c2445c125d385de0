//go:build matprofile

package masking_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif/camsim"
)

// Run with -tags matprofile (make test does): every gocv.Mat the capture
// and the encoder create is closed again.
func TestNoLeakedMats(t *testing.T) {
	before := gocv.MatProfile.Count()
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "mp", Address: "127.0.97.20", Username: "u", Password: "p", Scene: "badge", FPS: 10, Width: 320, Height: 180})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, be := range []masking.Backend{masking.BackendGStreamer, masking.BackendFFmpeg} {
		m, _ := masking.NewMasker("mp", maskspec.FailBlank)
		m.SetSettle(0)
		if _, err := m.SetMaskSets([]maskspec.MaskSet{{Masks: []maskspec.Mask{{Name: "all", Style: maskspec.StyleFull}}}}); err != nil {
			t.Fatal(err)
		}
		m.SetView("", true)
		open, _ := masking.CaptureConfig{URL: sim.Camera("mp").RTSPURL("main"), Username: "u", Password: "p", Backend: be}.Opener()
		p, _ := masking.NewPipeline(masking.PipelineConfig{Camera: "mp", Masker: m, Open: open, Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: "mp", FPS: 10})})
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(pctx) }()
		for p.Stats().Encoded < 20 {
			select {
			case <-ctx.Done():
				t.Fatal("no frames encoded")
			case <-time.After(50 * time.Millisecond):
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := gocv.MatProfile.Count(); n != before {
		var b strings.Builder
		_ = gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("%d Mats leaked:\n%s", n-before, b.String())
	}
}
