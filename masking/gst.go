package masking

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

// Backend selects how frames are captured.
type Backend string

// Capture backends.
const (
	BackendAuto      Backend = "auto"      // GStreamer, falling back to FFmpeg when it does not open (default)
	BackendGStreamer Backend = "gstreamer" // rtspsrc … avdec_h264 … I420 appsink
	BackendFFmpeg    Backend = "ffmpeg"    // OpenCV's FFmpeg backend (BGR, converted to I420)
)

// CaptureConfig describes a camera stream.
type CaptureConfig struct {
	// Camera names the camera in errors and in Stuck's counts.
	Camera string
	// URL is the RTSP URL without credentials.
	URL      string
	Username string
	Password string
	Backend  Backend
	// StallTimeout ends a stream that delivers nothing for this long
	// (rtspsrc tcp-timeout). Default 5 s.
	StallTimeout time.Duration
	// OpenTimeout bounds an open (connect, describe, play, first frame
	// decoded); ReadTimeout bounds waiting for the next frame. A call past
	// its bound is abandoned (see Stuck). Defaults 15 s and 5 s.
	OpenTimeout, ReadTimeout time.Duration
	// Stuck counts the calls abandoned at their deadline; nil: one shared
	// by the whole process.
	Stuck *Stuck
}

// Capture call bounds.
const (
	DefaultOpenTimeout = 15 * time.Second
	DefaultReadTimeout = 5 * time.Second
	// closeTimeout bounds closing a capture (GStreamer's teardown).
	closeTimeout = 5 * time.Second
)

// processStuck counts abandoned calls for the captures given no Stuck.
var processStuck = NewStuck(0, 0)

// withDefaults fills the zero timeouts and the Stuck counter.
func (c CaptureConfig) withDefaults() CaptureConfig {
	if c.StallTimeout <= 0 {
		c.StallTimeout = 5 * time.Second
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.Stuck == nil {
		c.Stuck = processStuck
	}
	return c
}

// gstQuote quotes a gst-launch property value.
func gstQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Opener returns an Opener for the pipeline. Credentials travel as rtspsrc
// properties (GStreamer) or URL userinfo handed to OpenCV (FFmpeg); neither
// is ever logged or put in an error.
func (c CaptureConfig) Opener() (Opener, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "rtsp" || u.Host == "" {
		return nil, fmt.Errorf("masking: capture URL %q: want rtsp://host[:port]/path", redact(c.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("masking: capture URL %s must not carry credentials", redact(c.URL))
	}
	c = c.withDefaults()
	switch c.Backend {
	case "", BackendAuto:
		return func(ctx context.Context) (Source, error) {
			src, err := c.openGst(ctx)
			if err == nil || ctx.Err() != nil || IsHung(err) || errors.Is(err, ErrTooManyStuck) {
				return src, err // a camera that hangs GStreamer would hang FFmpeg too
			}
			src, ferr := c.openFFmpeg(ctx)
			if ferr != nil {
				return nil, fmt.Errorf("%v; fallback: %w", err, ferr)
			}
			return src, nil
		}, nil
	case BackendGStreamer:
		return func(ctx context.Context) (Source, error) { return c.openGst(ctx) }, nil
	case BackendFFmpeg:
		return func(ctx context.Context) (Source, error) { return c.openFFmpeg(ctx) }, nil
	}
	return nil, fmt.Errorf("masking: capture backend %q is not auto, gstreamer or ffmpeg", c.Backend)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	return u.String()
}

func (c CaptureConfig) openGst(ctx context.Context) (Source, error) {
	p := "rtspsrc location=" + gstQuote(c.URL) + " protocols=tcp latency=100 tcp-timeout=" + fmt.Sprint(c.StallTimeout.Microseconds())
	if c.Username != "" {
		p += " user-id=" + gstQuote(c.Username) + " user-pw=" + gstQuote(c.Password)
	}
	p += " ! rtph264depay ! h264parse ! avdec_h264 output-corrupt=false ! videoconvert ! video/x-raw,format=I420 ! appsink max-buffers=2 drop=true sync=false"
	src, err := openCapture(ctx, c, p, gocv.VideoCaptureGstreamer, true)
	if err != nil {
		return nil, fmt.Errorf("masking: open %s (gstreamer): %w", redact(c.URL), err)
	}
	return src, nil
}

func (c CaptureConfig) openFFmpeg(ctx context.Context) (Source, error) {
	u, _ := url.Parse(c.URL)
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	src, err := openCapture(ctx, c, u.String(), gocv.VideoCaptureFFmpeg, false)
	if err != nil {
		return nil, fmt.Errorf("masking: open %s (ffmpeg): %w", redact(c.URL), err)
	}
	return src, nil
}

// openCapture opens src on a capture thread of its own, waiting at most
// c.OpenTimeout (or until ctx ends); every later call on the capture is
// bounded too.
func openCapture(ctx context.Context, c CaptureConfig, src string, api gocv.VideoCaptureAPI, i420 bool) (*gocvSource, error) {
	c = c.withDefaults()
	if err := c.Stuck.admit(c.Camera); err != nil {
		return nil, err
	}
	t := newCaptureThread(c.Camera, c.Stuck)
	s := &gocvSource{t: t, readTimeout: c.ReadTimeout, i420: i420}
	var vc *gocv.VideoCapture // set on the capture thread
	var oerr error
	err := t.call("open", c.OpenTimeout, ctx.Done(), func() {
		vc, oerr = gocv.OpenVideoCaptureWithAPI(src, api)
		if vc != nil {
			s.vc, s.mat, s.conv = vc, gocv.NewMat(), gocv.NewMat()
			t.release = s.release
		}
	}, func() error {
		if oerr != nil || !vc.IsOpened() {
			// gocv's errors may repeat the source string: keep them out.
			return errors.New("stream did not open")
		}
		return nil
	})
	if err != nil {
		if !s.dead(err) {
			_ = t.stop(closeTimeout)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

// gocvSource reads frames from an OpenCV VideoCapture, every call on its
// capture thread.
type gocvSource struct {
	t           *captureThread
	readTimeout time.Duration
	gone        bool // a call was abandoned: the thread closes the capture

	// Used on the capture thread only.
	vc   *gocv.VideoCapture
	mat  gocv.Mat
	conv gocv.Mat
	i420 bool
}

// dead records an abandoned call: the source must not call its thread
// again.
func (s *gocvSource) dead(err error) bool {
	if isAbandoned(err) {
		s.gone = true
	}
	return s.gone
}

func (s *gocvSource) Read(f *Frame) error {
	if s.gone {
		return errors.New("masking: capture: abandoned")
	}
	var ok bool
	err := s.t.call("read", s.readTimeout, nil, func() { ok = s.vc.Read(&s.mat) }, func() error {
		if !ok || s.mat.Empty() {
			return errors.New("masking: capture: no frame (end of stream or stall)")
		}
		return s.deliver(f)
	})
	if s.dead(err) {
		return fmt.Errorf("masking: capture: %w", err)
	}
	return err
}

// deliver copies the frame read into f (on the capture thread).
func (s *gocvSource) deliver(f *Frame) error {
	m := s.mat
	if !s.i420 {
		gocv.CvtColor(s.mat, &s.conv, gocv.ColorBGRToYUVI420)
		m = s.conv
	}
	if m.Type() != gocv.MatTypeCV8UC1 || m.Rows()%3 != 0 {
		return fmt.Errorf("masking: capture: unexpected frame layout %dx%d type %v", m.Cols(), m.Rows(), m.Type())
	}
	w, h := m.Cols(), m.Rows()*2/3
	data, err := m.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("masking: capture: %w", err)
	}
	if cap(f.Data) < len(data) {
		f.Data = make([]byte, len(data))
	}
	f.Data = f.Data[:len(data)]
	copy(f.Data, data)
	f.W, f.H = w, h
	return nil
}

// Close closes the capture, waiting at most closeTimeout; after an
// abandoned call the thread closes it when that call returns.
func (s *gocvSource) Close() error {
	if s.gone {
		return nil
	}
	s.gone = true
	return s.t.stop(closeTimeout)
}

// release frees the capture (on the capture thread).
func (s *gocvSource) release() {
	s.vc.Close()
	s.mat.Close()
	s.conv.Close()
}

// EncoderConfig configures the GStreamer encoder and its outputs.
type EncoderConfig struct {
	Camera        string
	Width, Height int
	FPS           int
	// Element is the H.264 encoder element with its properties. Default:
	// software x264, ultrafast/zerolatency. Gateways may use v4l2h264enc,
	// mpph264enc or nvv4l2h264enc. {bitrate} and {gop} are substituted.
	Element     string
	BitrateKbps int
	GOP         int
	// Relay, when set, receives the encoded stream in-process as stream
	// Camera (the agent passes its masking/relay server). Nil: encoded and
	// discarded (benchmarks).
	Relay StreamPublisher
}

// StreamPublisher serves the encoded H.264 streams. An Encoder calls it from
// one goroutine for its camera: PublishAU for every access unit (NAL units
// without start codes), then Unpublish once when its stream ends or
// publishing failed. masking/relay's Server satisfies it.
type StreamPublisher interface {
	PublishAU(stream string, au [][]byte) error
	Unpublish(stream string)
}

// DefaultEncoderElement is software x264 for live video.
const DefaultEncoderElement = "x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate} key-int-max={gop} byte-stream=true"

// Pipeline returns the GStreamer pipeline string; the H.264 byte stream
// goes to file descriptor fd.
func (c *EncoderConfig) Pipeline(fd uintptr) (string, error) {
	if c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 {
		return "", fmt.Errorf("masking: encoder %q: bad size %dx%d", c.Camera, c.Width, c.Height)
	}
	if c.FPS <= 0 {
		c.FPS = 15
	}
	if c.BitrateKbps <= 0 {
		c.BitrateKbps = 2000
	}
	if c.GOP <= 0 {
		c.GOP = 2 * c.FPS
	}
	if c.Element == "" {
		c.Element = DefaultEncoderElement
	}
	if strings.ContainsAny(c.Element, "!") {
		return "", fmt.Errorf("masking: encoder %q: element must be one element, not a pipeline", c.Camera)
	}
	enc := strings.NewReplacer("{bitrate}", fmt.Sprint(c.BitrateKbps), "{gop}", fmt.Sprint(c.GOP)).Replace(c.Element)
	p := fmt.Sprintf("appsrc ! rawvideoparse use-sink-caps=false width=%d height=%d format=i420 framerate=%d/1 ! queue ! %s ! h264parse config-interval=-1",
		c.Width, c.Height, c.FPS, enc)
	p += fmt.Sprintf(" ! video/x-h264,stream-format=byte-stream ! fdsink fd=%d sync=false", fd)
	return p, nil
}

// Encoder is a Sink that encodes I420 frames with GStreamer through gocv's
// VideoWriter. The H.264 byte stream comes back through a pipe (fdsink)
// and is published into the relay in-process, so no network I/O can stall
// the encoder or its shutdown. Recording reads the relay (see Recorder), so
// it can only ever hold what readers see.
type Encoder struct {
	cfg  EncoderConfig
	vw   *gocv.VideoWriter
	w    *os.File
	done chan error
}

// OpenEncoder starts the GStreamer pipeline and the goroutine that reads
// its output; Close joins it.
func OpenEncoder(cfg EncoderConfig) (*Encoder, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("masking: encoder %q: %w", cfg.Camera, err)
	}
	p, err := cfg.Pipeline(w.Fd())
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	// GRAY8 frames of height H·3/2 carry the I420 bytes; rawvideoparse
	// reinterprets them (OpenCV's writer only takes BGR or GRAY8).
	vw, err := gocv.VideoWriterFile(p, "", float64(cfg.FPS), cfg.Width, cfg.Height*3/2, false)
	if err != nil || !vw.IsOpened() {
		if vw != nil {
			vw.Close()
		}
		r.Close()
		w.Close()
		return nil, fmt.Errorf("masking: encoder %q: GStreamer pipeline did not start (encoder %q)", cfg.Camera, strings.Fields(cfg.Element + " x")[0])
	}
	e := &Encoder{cfg: cfg, vw: vw, w: w, done: make(chan error, 1)}
	go func() { e.done <- e.forward(r) }()
	return e, nil
}

// forward reads access units from the pipe and publishes them. After a
// publishing error it ends the stream and keeps draining, so GStreamer never
// blocks on the pipe; the error is returned at the end of the stream.
func (e *Encoder) forward(r *os.File) error {
	defer r.Close()
	pub, cam := e.cfg.Relay, e.cfg.Camera
	publishing := pub != nil
	defer func() {
		if publishing {
			pub.Unpublish(cam)
		}
	}()
	ar := newAUReader(r)
	var first error
	for {
		au, err := ar.NextAU()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return first
			}
			return err
		}
		if !publishing {
			continue
		}
		if err := pub.PublishAU(cam, au); err != nil {
			first = fmt.Errorf("masking: encoder %q: publish: %w", cam, err)
			publishing = false
			pub.Unpublish(cam)
		}
	}
}

// Write encodes one frame; it refuses frames the masker did not pass.
func (e *Encoder) Write(f *Frame) error {
	if !f.Masked {
		return errors.New("masking: refusing to encode an unmasked frame")
	}
	if f.W != e.cfg.Width || f.H != e.cfg.Height {
		return fmt.Errorf("masking: encoder %q: frame %dx%d, encoder %dx%d", e.cfg.Camera, f.W, f.H, e.cfg.Width, e.cfg.Height)
	}
	m, err := gocv.NewMatFromBytes(f.H*3/2, f.W, gocv.MatTypeCV8UC1, f.Data)
	if err != nil {
		return err
	}
	defer m.Close()
	return e.vw.Write(m)
}

// Close flushes the encoder (EOS through a local pipe: nothing on the
// network to wait for), then joins the forwarding goroutine.
func (e *Encoder) Close() error {
	err := e.vw.Close()
	e.w.Close() // the reader sees EOF once GStreamer has let go too
	if ferr := <-e.done; err == nil {
		err = ferr
	}
	return err
}

// LazyEncoder opens an Encoder at the first frame, with that frame's size
// (the camera decides its resolution). A later frame of another size is an
// error: the pipeline stops and is restarted by its owner.
type LazyEncoder struct {
	cfg EncoderConfig
	enc *Encoder
}

// NewLazyEncoder returns a Sink; cfg.Width/Height are ignored.
func NewLazyEncoder(cfg EncoderConfig) *LazyEncoder { return &LazyEncoder{cfg: cfg} }

// Write implements Sink.
func (l *LazyEncoder) Write(f *Frame) error {
	if l.enc == nil {
		if !f.Masked {
			return errors.New("masking: refusing to encode an unmasked frame")
		}
		c := l.cfg
		c.Width, c.Height = f.W, f.H
		e, err := OpenEncoder(c)
		if err != nil {
			return err
		}
		l.enc = e
	}
	return l.enc.Write(f)
}

// Close implements Sink.
func (l *LazyEncoder) Close() error {
	if l.enc == nil {
		return nil
	}
	return l.enc.Close()
}

// FileOpener opens a video file through GStreamer (decodebin → I420), for
// benchmarks and for checking recorded segments.
func FileOpener(path string) Opener {
	return func(ctx context.Context) (Source, error) {
		p := "filesrc location=" + gstQuote(path) + " ! decodebin ! videoconvert ! video/x-raw,format=I420 ! appsink max-buffers=4 sync=false"
		src, err := openCapture(ctx, CaptureConfig{Camera: "file " + path, OpenTimeout: time.Minute, ReadTimeout: time.Minute}, p, gocv.VideoCaptureGstreamer, true)
		if err != nil {
			return nil, fmt.Errorf("masking: open file %s: %w", path, err)
		}
		return src, nil
	}
}
