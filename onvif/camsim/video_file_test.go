package camsim_test

import (
	"math"
	"net/url"
	"os"
	"testing"

	"velo/onvif/camsim"
)

// TestSourceFileStreamed: a camera with source: streams that file (here
// Debian's opencv-doc vtest.avi, real footage) over its RTSP server: the
// picture read back with ffmpeg is the clip's, not a rendered scene.
func TestSourceFileStreamed(t *testing.T) {
	const clip = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	if _, err := os.Stat(clip); err != nil {
		t.Fatalf("%s missing: Debian package opencv-doc (deploy/deps.sh)", clip)
	}
	const w, h = 384, 288
	sim := camsim.StartForTest(t, camsim.CameraConfig{ID: "file", Address: "127.0.98.2", Username: "camuser", Password: "cam-pw-7",
		Source: clip, FPS: 10, Width: w, Height: h})
	cam := sim.Camera("file")
	u, err := url.Parse(cam.RTSPURL("main"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("camuser", "cam-pw-7")
	got := camsim.GrabLuma(t, u.String(), w, h, 5)
	ref := scaleLuma(camsim.GrabLuma(t, clip, 768, 576, 1), 768, 576, w, h)
	if p := lumaPSNR(got, ref); p < 18 {
		t.Errorf("streamed picture vs vtest.avi: PSNR %.1f dB, want ≥ 18 (the clip's static background)", p)
	}
	other := make([]byte, w*h)
	for i := range other {
		other[i] = byte(i % 251)
	}
	if p := lumaPSNR(got, other); p > 12 {
		t.Errorf("the check cannot tell pictures apart: %.1f dB against noise", p)
	}
}

func scaleLuma(y []byte, w, h, nw, nh int) []byte {
	out := make([]byte, nw*nh)
	for yy := 0; yy < nh; yy++ {
		for xx := 0; xx < nw; xx++ {
			out[yy*nw+xx] = y[(yy*h/nh)*w+xx*w/nw]
		}
	}
	return out
}

func lumaPSNR(a, b []byte) float64 {
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	if se == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/(se/float64(len(a))))
}
