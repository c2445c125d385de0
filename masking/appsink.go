package masking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"velo/masking/gstapp"
)

// The GStreamer path runs through masking/gstapp (cgo over appsink and
// appsrc), not through gocv: OpenCV's VideoCapture hands out a Mat it
// copied from the GstBuffer, which the frame path copied again into its
// I420 frame, and its VideoWriter takes only BGR or GRAY8 Mats, so the
// I420 bytes went in as a GRAY8 image that rawvideoparse reinterpreted
// behind one more copy. With gstapp the decoded buffer is copied once into
// the pooled frame and the masked frame once into a pooled GstBuffer.
//
// VELO_GST_PATH=opencv selects the former gocv path for the GStreamer
// backend (capture and encoder), for before/after measurements; it will go
// once the appsink path has run in the field.
var gstOpenCV = os.Getenv("VELO_GST_PATH") == "opencv"

// openGrace is how much longer than the first pull's own bound the open
// waits for the call to come back (building and starting the pipeline).
const openGrace = 2 * time.Second

// appSource reads decoded I420 frames from a gstapp capture pipeline. Its
// open and close run on a capture thread (GStreamer's start and teardown
// may hang in a driver or on a camera); its reads run on the caller's
// goroutine, each bounded by the appsink's own timed pull, so a frame is
// not handed from thread to thread.
type appSource struct {
	t           *captureThread
	pipe        *gstapp.Pipe
	readTimeout time.Duration
	gone        bool
	pending     bool // the frame pulled by the open, not yet read
	info        gstapp.Info
	path        CapturePath
}

// Path says how the source decodes its stream.
func (s *appSource) Path() CapturePath { return s.path }

// openApp starts desc (its appsink named "velo") on a capture thread and
// waits for its first frame, at most c.OpenTimeout; props are string
// properties set on named elements before it starts (credentials), as
// element, property, value triples.
func openApp(ctx context.Context, c CaptureConfig, desc string, props ...string) (*appSource, error) {
	c = c.withDefaults()
	if err := c.Stuck.admit(c.Camera); err != nil {
		return nil, err
	}
	t := newCaptureThread(c.Camera, c.Stuck)
	s := &appSource{t: t, readTimeout: c.ReadTimeout}
	var pipe *gstapp.Pipe
	var info gstapp.Info
	var oerr error
	err := t.call("open", c.OpenTimeout+openGrace, ctx.Done(), func() {
		if pipe, oerr = gstapp.Launch(desc); oerr != nil {
			return
		}
		t.release = pipe.Close
		for i := 0; i+2 < len(props) && oerr == nil; i += 3 {
			oerr = pipe.SetString(props[i], props[i+1], props[i+2])
		}
		if oerr == nil {
			oerr = pipe.Play()
		}
		if oerr == nil {
			info, oerr = pipe.Pull(c.OpenTimeout)
		}
	}, func() error {
		switch {
		case errors.Is(oerr, gstapp.ErrTimeout):
			return abandonedError{"open", c.OpenTimeout}
		case errors.Is(oerr, gstapp.ErrEOS):
			return errors.New("stream ended before its first frame")
		case oerr != nil:
			return oerr
		}
		s.pipe, s.info, s.pending = pipe, info, true
		s.path.FPS = info.FPS()
		return nil
	})
	if err != nil {
		if !t.gone() { // the open came back (failed or timed out): tear it down, bounded
			_ = t.stop(closeTimeout)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

func (s *appSource) Read(f *Frame) error {
	if s.gone {
		return errors.New("masking: capture: closed")
	}
	if !s.pending {
		info, err := s.pipe.Pull(s.readTimeout)
		switch {
		case errors.Is(err, gstapp.ErrTimeout):
			return fmt.Errorf("masking: capture: %w", abandonedError{"read", s.readTimeout})
		case errors.Is(err, gstapp.ErrEOS):
			return errors.New("masking: capture: no frame (end of stream)")
		case err != nil:
			return fmt.Errorf("masking: capture: %w", err)
		}
		s.info = info
	}
	s.pending = false
	w, h := s.info.W, s.info.H
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 {
		return fmt.Errorf("masking: capture: frame %dx%d: want an even width and height", w, h)
	}
	n := s.info.PackedI420
	if cap(f.Data) < n {
		f.Data = make([]byte, n)
	}
	f.Data = f.Data[:n]
	f.W, f.H = w, h
	if err := s.pipe.Take(f.Data); err != nil {
		return fmt.Errorf("masking: capture: %w", err)
	}
	return nil
}

// Close tears the pipeline down on the capture thread, waiting at most
// closeTimeout (then it is abandoned like a hung call, and counted).
func (s *appSource) Close() error {
	if s.gone {
		return nil
	}
	s.gone = true
	return s.t.stop(closeTimeout)
}
