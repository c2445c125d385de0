package masking_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking"
	"velo/masking/codec"
	"velo/masking/maskspec"
	"velo/masking/relay"
	"velo/onvif/camsim"
)

const h265W, h265H = 320, 240

// h265Run streams an H.265 camera of the simulator through capture →
// mask → encode (out codec) into a relay, and returns the relay's URL for
// an operator, the masked regions and the capture paths reported.
type h265Run struct {
	url     string
	regions map[string]rect
	mu      sync.Mutex
	paths   []masking.CapturePath
	pl      *masking.Pipeline
}

func (r *h265Run) Paths() []masking.CapturePath {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]masking.CapturePath(nil), r.paths...)
}

// startH265Camera starts the simulator's H.265 camera.
func startH265Camera(t *testing.T, addr string) camsim.CameraConfig {
	cam := camsim.CameraConfig{ID: "hevc", Address: addr, Username: "camuser", Password: "cam-pw-5",
		Scene: "ptz", FPS: 10, Width: h265W, Height: h265H, PTZ: &camsim.PTZConfig{}, Encoding: "H265", GOPFrames: 5}
	sim := camsim.StartForTest(t, cam)
	return sim.Camera("hevc").Config()
}

// startH265 runs a pipeline from camera cc until the (sub)test ends.
func startH265(t *testing.T, cc camsim.CameraConfig, out codec.Codec, fail maskspec.FailMode) *h265Run {
	t.Helper()
	regs := camsim.Regions(cc, camsim.Position{})
	run := &h265Run{regions: map[string]rect{}}
	var masks []maskspec.Mask
	for name, k := range map[string]string{"badge reader": camsim.RegionBadgeReader, "street": camsim.RegionStreet} {
		r := rect{regs[k].X0, regs[k].Y0, regs[k].X1, regs[k].Y1}
		run.regions[name] = r
		masks = append(masks, maskspec.Mask{Name: name, Polygon: r.grow(0.03).poly()})
	}
	m, err := masking.NewMasker("hevc", fail)
	if err != nil {
		t.Fatal(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Preset: "1", Masks: masks}}); err != nil {
		t.Fatal(err)
	}
	m.SetView("1", true)
	relayAddr := fmt.Sprintf("127.0.97.1:%d", testkit.FreePortOn(t, "127.0.97.1"))
	rel, err := relay.New(relayAddr, "velo", func(user, name string) (relay.Secret, bool) {
		return relay.Password(opPass), user == opUser && name == "hevc"
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rel.Close)
	// The profile's Media (ver10) encoding says H264, as Dahua's does;
	// the SDP says H265 and wins.
	open, err := masking.CaptureConfig{URL: fmt.Sprintf("rtsp://%s:%d/main", cc.Address, cc.RTSPPort), Username: "camuser", Password: "cam-pw-5",
		Codec: codec.H264, OnPath: func(p masking.CapturePath) {
			run.mu.Lock()
			run.paths = append(run.paths, p)
			run.mu.Unlock()
		}}.Opener()
	if err != nil {
		t.Fatal(err)
	}
	run.pl, err = masking.NewPipeline(masking.PipelineConfig{Camera: "hevc", Masker: m, Open: open, Logf: t.Logf,
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: "hevc", Codec: out, GOP: 5, Relay: rel})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.pl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for !rel.Publishing("hevc") {
		if time.Now().After(deadline) {
			t.Fatalf("masked stream never published; paths %v", run.Paths())
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.url = fmt.Sprintf("rtsp://%s:%s@%s/hevc", opUser, opPass, relayAddr)
	return run
}

// An H.265 camera streams masked through GStreamer's H.265 path (not the
// FFmpeg fallback), out as H.265, decoded by ffmpeg: the masked regions
// are flat, and ffprobe sees the codec the relay's SDP names. (H.265 in,
// H.264 out: TestH265CameraThroughTheAgent in agent, and the fallback
// below.) No silent fallback: with the H.265 decoder failing, the capture
// falls back to OpenCV's FFmpeg backend, says so in its path, and still
// masks.
func TestEndToEndH265CameraMasked(t *testing.T) {
	cc := startH265Camera(t, "127.0.97.20")
	t.Run("gstreamer-H265-out", func(t *testing.T) {
		run := startH265(t, cc, codec.H265, maskspec.FailBlank)
		y := camsim.GrabLuma(t, run.url, h265W, h265H, 5)
		run.checkMasked(t, y)
		if got := camsim.ProbeCodec(t, run.url); got != "hevc" {
			t.Errorf("relay serves %q, want hevc", got)
		}
		p := run.Paths()
		if len(p) == 0 || p[0].Codec != codec.H265 || p[0].Decoder != "avdec_h265" || p[0].Backend != masking.BackendGStreamer ||
			p[0].Fallback != "" || !strings.Contains(p[0].Note, "SDP H265") {
			t.Errorf("capture paths %+v: want H265 through avdec_h265 on GStreamer, the profile/SDP disagreement noted", p)
		}
		if vp := run.pl.Path(); vp.OutCodec != "H265" || vp.Encoder != "x265enc" {
			t.Errorf("video path %+v", vp)
		}
		// No fps configured: the encoder runs at the camera's 10 fps (a
		// 15 fps default gave a 10 fps camera a keyframe every 3 s).
		if vp := run.pl.Path(); vp.OutFPS != 10 || p[0].FPS != 10 {
			t.Errorf("encoder at %d fps, stream %.1f fps: want the camera's 10", vp.OutFPS, p[0].FPS)
		}
	})
	t.Run("decoder-fails-ffmpeg-H264-out", func(t *testing.T) {
		restore := masking.FailElement("avdec_h265", "decoder")
		defer restore()
		run := startH265(t, cc, codec.H264, maskspec.FailDrop)
		y := camsim.GrabLuma(t, run.url, h265W, h265H, 5)
		run.checkMasked(t, y)
		p := run.Paths()
		if len(p) == 0 || p[0].Backend != masking.BackendFFmpeg || !strings.Contains(p[0].Fallback, "no working H265 decoder") ||
			!strings.Contains(p[0].String(), "avdec_h265 (failed (test))") {
			t.Errorf("capture paths %+v: want the FFmpeg fallback, naming the failed decoder", p)
		}
	})
}

// checkMasked: the masked regions are flat, the rest is the scene.
func (r *h265Run) checkMasked(t *testing.T, y []byte) {
	t.Helper()
	for name, rg := range r.regions {
		if sd := stddev(y, h265W, h265H, rg); sd > maxMaskedStddev {
			t.Errorf("output %s region stddev %.2f > %.1f: scene detail leaks", name, sd, maxMaskedStddev)
		}
	}
	if sd := stddev(y, h265W, h265H, rect{0, 0, 1, 0.3}); sd < 3 {
		t.Errorf("unmasked top stddev %.2f: the output is not the scene", sd)
	}
}
