package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"velo/masking"
	"velo/masking/maskspec"
)

// pipelineCPU runs Velo's pipeline on the clip: GStreamer decode to I420 →
// mask (the rectangle ffmpeg masks) → GStreamer x264 (same settings as
// ffmpeg's run). It returns process CPU seconds per frame and x264's
// option string from the stream's SEI.
func pipelineCPU(clip string, st maskspec.Style, cover float64) (float64, string, error) {
	m, err := masking.NewMasker("bench", maskspec.FailDrop)
	if err != nil {
		return 0, "", err
	}
	m.SetSettle(0)
	var masks []maskspec.Mask
	if st != "" {
		masks = []maskspec.Mask{{Name: "box", Polygon: rectPoly(boxRect(cover)), Style: st, Block: 16, Strength: 15}}
	}
	if _, err := m.SetMaskSets([]maskspec.MaskSet{{Masks: masks}}); err != nil {
		return 0, "", err
	}
	m.SetView("", true)
	done := make(chan struct{})
	opened := false
	open := func(ctx context.Context) (masking.Source, error) {
		if opened {
			close(done) // the clip ended: stop
			<-ctx.Done()
			return nil, ctx.Err()
		}
		opened = true
		return masking.FileOpener(clip)(ctx)
	}
	sei := &seiCatcher{}
	sink := masking.NewLazyEncoder(masking.EncoderConfig{Camera: "bench", FPS: 30, BitrateKbps: 4000, GOP: 60, Relay: sei})
	p, err := masking.NewPipeline(masking.PipelineConfig{Camera: "bench", Masker: m, Open: open, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c0 := cpuNow()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	<-done
	cancel()
	if err := <-errc; err != nil {
		return 0, "", err
	}
	cpu := cpuNow() - c0
	n := p.Stats().Encoded
	if n == 0 {
		return 0, "", errors.New("no frames")
	}
	return cpu / float64(n), sei.get(), nil
}

// seiCatcher is the encoder's publisher in the benchmark: it keeps x264's
// option string (the user-data SEI x264 writes with the first keyframe).
type seiCatcher struct {
	mu   sync.Mutex
	opts string
}

func (s *seiCatcher) PublishAU(_ string, au [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts != "" {
		return nil
	}
	for _, nal := range au {
		if len(nal) > 0 && nal[0]&0x1f == 6 {
			if o := x264Options(nal); o != "" {
				s.opts = o
			}
		}
	}
	return nil
}

func (s *seiCatcher) Unpublish(string) {}

func (s *seiCatcher) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// x264Options extracts "options: …" from x264's SEI text.
func x264Options(b []byte) string {
	i := bytes.Index(b, []byte("options: "))
	if i < 0 {
		return ""
	}
	b = b[i+len("options: "):]
	if j := bytes.IndexByte(b, 0); j >= 0 {
		b = b[:j]
	}
	return string(b)
}

// compareX264 prints the x264 options both sides used and the ones that
// differ (the rate control must not).
func compareX264(dir, clip, velo string) {
	out := filepath.Join(dir, "ffmpeg-x264.h264")
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-i", clip, "-frames:v", "2"}
	args = append(args, x264Args(4000, 60)...)
	args = append(args, "-f", "h264", out)
	if err := exec.Command("ffmpeg", args...).Run(); err != nil {
		fmt.Println("x264 options: ffmpeg:", err)
		return
	}
	b, _ := os.ReadFile(out)
	ff := x264Options(b)
	fmt.Printf("x264 options, velo:   %s\nx264 options, ffmpeg: %s\n", velo, ff)
	kv := func(s string) map[string]string {
		m := map[string]string{}
		for _, f := range strings.Fields(s) {
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
		}
		return m
	}
	a, c := kv(velo), kv(ff)
	var diff []string
	for k, v := range a {
		if c[k] != v {
			diff = append(diff, fmt.Sprintf("%s=%s/%s", k, v, c[k]))
		}
	}
	sort.Strings(diff)
	if len(diff) == 0 {
		diff = []string{"none"}
	}
	fmt.Printf("x264 options that differ (velo/ffmpeg): %s\n", strings.Join(diff, " "))
}
