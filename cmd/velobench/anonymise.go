package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"velo/masking"
	"velo/masking/anonymise"
	"velo/masking/maskspec"
)

// The labelled footage (Debian's opencv-doc) and its hand-made labels.
const (
	vtestClip      = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
	vtestLabels    = "masking/anonymise/testdata/vtest_people.json"
	megamindClip   = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi"
	megamindLabels = "masking/anonymise/testdata/megamind_faces.json"
)

var benchMagenta = maskspec.RGBToYUV(255, 0, 255)

// anonymiseFigures: coverage of the hand-labelled people of vtest.avi at
// full size (768×576, 600 frames) without and with the zone fallback, the
// share of the frame masked, the detectors' CPU per 1080p frame and the
// frames per second one core sustains through the whole path with dynamic
// masking on (issue 19).
func anonymiseFigures(dir string) error {
	for _, c := range []struct {
		name     string
		deadline time.Duration
		dets     []anonymise.Detector
	}{
		{"AnonCoverage/motion/no-fallback", 5 * time.Second, []anonymise.Detector{anonymise.Motion}},
		{"AnonCoverage/motion/fallback", 40 * time.Millisecond, []anonymise.Detector{anonymise.Motion}},
		{"AnonCoverage/motion+hog/fallback", 40 * time.Millisecond, []anonymise.Detector{anonymise.Motion, anonymise.HOG}},
	} {
		cov, cost, st, err := labelledCoverage(vtestClip, vtestLabels, 600, c.dets, c.deadline)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		report(c.name, cov, "≥ 0.98", cov >= 0.98, fmt.Sprintf("(people ≥ 90%% masked, 350 labelled in 60 frames; %.1f%% of the frame masked; %d of %d frames zone fallback; detector p50 %v p99 %v)",
			100*cost, st.Fallbacks, st.Frames, st.DetectP50.Round(time.Microsecond), st.DetectP99.Round(time.Microsecond)))
	}
	cov, cost, st, err := labelledCoverage(megamindClip, megamindLabels, 261, []anonymise.Detector{anonymise.FaceFrontal, anonymise.FaceProfile}, 5*time.Second)
	if err != nil {
		return fmt.Errorf("AnonFaces: %w", err)
	}
	report("AnonFaces/frontal+profile", cov, "≥ 0.98", cov >= 0.98, fmt.Sprintf("(faces ≥ 90%% masked, 16 labelled in 12 frames of Megamind.avi; %.1f%% of the frame masked; detector p50 %v p99 %v)",
		100*cost, st.DetectP50.Round(time.Microsecond), st.DetectP99.Round(time.Microsecond)))
	clip := filepath.Join(dir, "vtest1080.mkv")
	if _, err := os.Stat(clip); err != nil {
		cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-i", vtestClip, "-frames:v", "150", "-vf", "scale=1920:1080", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "6M", clip)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("vtest at 1080p: %v: %s", err, tail(b))
		}
	}
	for _, dets := range [][]anonymise.Detector{{anonymise.Motion}, {anonymise.Motion, anonymise.HOG}} {
		off, on, st, err := dynamicPipelineCPU(clip, dets)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("AnonPipeline1080/%v", dets)
		report(name, 1/on, "≥ 25", 1/on >= 25, fmt.Sprintf("(frames/s one core sustains with dynamic masking: %.1f ms CPU per frame, %.1f ms without; detectors %.1f ms CPU per frame; detector wall p50 %v p99 %v)",
			on*1e3, off*1e3, (on-off)*1e3, st.DetectP50.Round(time.Microsecond), st.DetectP99.Round(time.Microsecond)))
	}
	return nil
}

// labelledCoverage runs the stage (fill, magenta, whole-frame zone) over
// the first n frames of clip and scores the hand-made labels.
func labelledCoverage(clip, labels string, n int, dets []anonymise.Detector, deadline time.Duration) (cov, cost float64, st anonymise.Stats, err error) {
	b, err := os.ReadFile(labels)
	if err != nil {
		return 0, 0, st, fmt.Errorf("%w (run from the repository's root)", err)
	}
	var lab struct {
		Frames map[string][][4]int
	}
	if err := json.Unmarshal(b, &lab); err != nil {
		return 0, 0, st, err
	}
	whole := []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}
	stage, err := anonymise.New(anonymise.Config{Camera: "labelled", Detectors: dets, Zone: whole, Style: maskspec.StyleFill, Color: benchMagenta, Deadline: deadline})
	if err != nil {
		return 0, 0, st, err
	}
	defer stage.Close()
	src, err := masking.FileOpener(clip)(context.Background())
	if err != nil {
		return 0, 0, st, err
	}
	defer src.Close()
	f := &masking.Frame{}
	people, covered, frames := 0, 0, 0
	for i := 0; i < n; i++ {
		if err := src.Read(f); err != nil {
			return 0, 0, st, err
		}
		if err := stage.Apply(f); err != nil {
			return 0, 0, st, err
		}
		boxes, ok := lab.Frames[strconv.Itoa(i)]
		if !ok {
			continue
		}
		for _, bx := range boxes {
			people++
			if maskedShare(f, bx[0], bx[1], min(bx[2], f.W), min(bx[3], f.H)) >= 0.9 {
				covered++
			}
		}
		cost += maskedShare(f, 0, 0, f.W, f.H)
		frames++
	}
	return float64(covered) / float64(people), cost / float64(frames), stage.Stats(), nil
}

// maskedShare is the share of the pixels of a rectangle with the magenta
// fill.
func maskedShare(f *masking.Frame, x0, y0, x1, y1 int) float64 {
	yp, up, vp := f.Planes()
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	in, all := 0, 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			c := (y/2)*(f.W/2) + x/2
			all++
			if d(yp[y*f.W+x], benchMagenta.Y) < 40 && d(up[c], benchMagenta.U) < 32 && d(vp[c], benchMagenta.V) < 32 {
				in++
			}
		}
	}
	return float64(in) / float64(max(all, 1))
}

// dynamicPipelineCPU is the CPU per frame of capture → mask → dynamic
// masking → x264 on clip, and the same without dynamic masking.
func dynamicPipelineCPU(clip string, dets []anonymise.Detector) (off, on float64, st anonymise.Stats, err error) {
	if off, _, err = pipelineCPU(clip, "", 0); err != nil {
		return 0, 0, st, err
	}
	whole := []maskspec.Point{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}, {X: 0, Y: 1}}
	stage, err := anonymise.New(anonymise.Config{Camera: "bench", Detectors: dets, Zone: whole, Deadline: 5 * time.Second})
	if err != nil {
		return 0, 0, st, err
	}
	defer stage.Close()
	m, err := masking.NewMasker("bench", maskspec.FailDrop)
	if err != nil {
		return 0, 0, st, err
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{}}); err != nil {
		return 0, 0, st, err
	}
	m.SetView("", true)
	p, err := masking.NewPipeline(masking.PipelineConfig{Camera: "bench", Masker: m, Open: masking.FileOpener(clip), Dynamic: stage,
		Sink: masking.NewLazyEncoder(masking.EncoderConfig{Camera: "bench", FPS: 30, BitrateKbps: 4000, GOP: 60})})
	if err != nil {
		return 0, 0, st, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c0 := cpuNow()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for p.Stats().Reconnects == 0 { // the clip's end
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		return 0, 0, st, err
	}
	n := p.Stats().Encoded
	if n == 0 {
		return 0, 0, st, errors.New("no frames")
	}
	return off, (cpuNow() - c0) / float64(n), stage.Stats(), nil
}
