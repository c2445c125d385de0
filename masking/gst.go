package masking

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"velo/masking/codec"
	"velo/masking/gstapp"

	"gocv.io/x/gocv"
)

// Backend selects how frames are captured.
type Backend string

// Capture backends.
const (
	BackendAuto      Backend = "auto"      // GStreamer, falling back to FFmpeg when it does not open (default)
	BackendGStreamer Backend = "gstreamer" // rtspsrc … depay ! parse ! decoder … I420 appsink
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
	// Codec is what the camera's profile says it sends ("": unknown).
	// The stream's SDP confirms it before each open; when they differ the
	// SDP wins (it is what arrives) and the path says so.
	Codec codec.Codec
	// OnPath is told, after every open, how the stream is decoded (codec,
	// decoder, backend, and why it is not the preferred path); nil: not
	// told. Called on the opening goroutine.
	OnPath func(CapturePath)
}

// CapturePath is how a capture decodes its stream.
type CapturePath struct {
	Codec   codec.Codec `json:"codec"`
	Backend Backend     `json:"backend"` // gstreamer | ffmpeg
	Decoder string      `json:"decoder"` // element, or "opencv-ffmpeg"
	// Fallback says why this is not the preferred path (a decoder
	// preferred to this one that failed, GStreamer that did not open);
	// "" on the preferred path.
	Fallback string `json:"fallback,omitempty"`
	// Note: the profile and the SDP disagree on the codec.
	Note string `json:"note,omitempty"`
	// FPS is the stream's frame rate as the decoder reports it (0:
	// unknown).
	FPS float64 `json:"fps,omitempty"`
}

// String names the path in logs and events.
func (p CapturePath) String() string {
	s := fmt.Sprintf("%s via %s (%s)", p.Codec, p.Decoder, p.Backend)
	if p.Note != "" {
		s += "; " + p.Note
	}
	if p.Fallback != "" {
		s += "; fallback: " + p.Fallback
	}
	return s
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
			c, cd, note, err := c.prepare(ctx)
			if err != nil {
				return nil, err
			}
			src, err := c.openGst(ctx, cd, note)
			if err == nil || ctx.Err() != nil || IsHung(err) || errors.Is(err, ErrTooManyStuck) {
				return src, err // a camera that hangs GStreamer would hang FFmpeg too
			}
			src, ferr := c.openFFmpeg(ctx, cd, note, "GStreamer did not open: "+err.Error())
			if ferr != nil {
				return nil, fmt.Errorf("%v; fallback: %w", err, ferr)
			}
			return src, nil
		}, nil
	case BackendGStreamer, BackendFFmpeg:
		return func(ctx context.Context) (Source, error) {
			c, cd, note, err := c.prepare(ctx)
			if err != nil {
				return nil, err
			}
			if c.Backend == BackendFFmpeg {
				return c.openFFmpeg(ctx, cd, note, "")
			}
			return c.openGst(ctx, cd, note)
		}, nil
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

// prepare refuses at once a camera at its bound of hung calls (Stuck),
// then reads the stream's codec (streamCodec); the open that follows gets
// what is left of OpenTimeout, so the whole open stays within it.
func (c CaptureConfig) prepare(ctx context.Context) (CaptureConfig, codec.Codec, string, error) {
	if err := c.Stuck.admit(c.Camera); err != nil {
		return c, "", "", fmt.Errorf("masking: open %s: %w", redact(c.URL), err)
	}
	t0 := time.Now()
	cd, note, err := c.streamCodec(ctx)
	if err != nil {
		return c, "", "", fmt.Errorf("masking: open %s: %w", redact(c.URL), err)
	}
	c.OpenTimeout -= time.Since(t0) // streamCodec takes at most a third
	return c, cd, note, nil
}

// appsinkI420 ends a capture pipeline: raw video as I420 into OpenCV.
const appsinkI420 = "videoconvert ! video/x-raw,format=I420 ! appsink max-buffers=2 drop=true sync=false"

// appsinkGst ends a gstapp capture pipeline: raw video as I420 into the
// appsink "velo", two frames at most, the older dropped (leaky, as the
// OpenCV path's), no last frame kept (a decoder buffer less held).
const appsinkGst = "videoconvert ! video/x-raw,format=I420 ! appsink name=velo max-buffers=2 drop=true sync=false enable-last-sample=false"

// openGst decodes with cd's first working decoder (ProbeElements).
func (c CaptureConfig) openGst(ctx context.Context, cd codec.Codec, note string) (Source, error) {
	els := ProbeElements()
	dec, ok := els.Decoder(cd)
	if !ok {
		return nil, fmt.Errorf("masking: open %s (gstreamer): no working %s decoder (%s)", redact(c.URL), cd, els.Skipped(cd, "decoder"))
	}
	p := "rtspsrc name=src location=" + gstQuote(c.URL) + " protocols=tcp latency=100 tcp-timeout=" + fmt.Sprint(c.StallTimeout.Microseconds())
	p += " ! " + cd.Depay() + " ! " + cd.Parser() + " ! " + dec.Template + " ! "
	var src interface{ Path() CapturePath }
	var s Source
	var err error
	if gstOpenCV {
		if c.Username != "" {
			p = strings.Replace(p, " ! ", " user-id="+gstQuote(c.Username)+" user-pw="+gstQuote(c.Password)+" ! ", 1)
		}
		var g *gocvSource
		g, err = openCapture(ctx, c, p+appsinkI420, gocv.VideoCaptureGstreamer, true)
		src, s = g, g
	} else {
		var props []string
		if c.Username != "" { // properties, never in the pipeline string
			props = []string{"src", "user-id", c.Username, "src", "user-pw", c.Password}
		}
		var a *appSource
		a, err = openApp(ctx, c, p+appsinkGst, props...)
		src, s = a, a
	}
	if err != nil {
		return nil, fmt.Errorf("masking: open %s (gstreamer, %s): %w", redact(c.URL), dec.Name, err)
	}
	path := CapturePath{Codec: cd, Backend: BackendGStreamer, Decoder: dec.Name, Note: note, FPS: src.Path().FPS}
	if sk := els.Skipped(cd, "decoder"); sk != "" {
		path.Fallback = "preferred decoders failed: " + sk
	}
	setPath(s, path)
	if c.OnPath != nil {
		c.OnPath(path)
	}
	return s, nil
}

// setPath records how a source decodes.
func setPath(s Source, p CapturePath) {
	switch s := s.(type) {
	case *gocvSource:
		s.path = p
	case *appSource:
		s.path = p
	}
}

// openFFmpeg decodes with OpenCV's FFmpeg backend (BGR, converted to
// I420); why says why GStreamer was not used ("" when configured).
func (c CaptureConfig) openFFmpeg(ctx context.Context, cd codec.Codec, note, why string) (Source, error) {
	u, _ := url.Parse(c.URL)
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	src, err := openCapture(ctx, c, u.String(), gocv.VideoCaptureFFmpeg, false)
	if err != nil {
		return nil, fmt.Errorf("masking: open %s (ffmpeg): %w", redact(c.URL), err)
	}
	path := CapturePath{Codec: cd, Backend: BackendFFmpeg, Decoder: "opencv-ffmpeg", Note: note, Fallback: why, FPS: src.path.FPS}
	src.path = path
	if c.OnPath != nil {
		c.OnPath(path)
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
			if vc.IsOpened() {
				s.path.FPS = vc.Get(gocv.VideoCaptureFPS)
			}
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

	path CapturePath // how it decodes (set once opened)
}

// Path says how the source decodes its stream.
func (s *gocvSource) Path() CapturePath { return s.path }

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
	// FPS is the camera's frame rate (the profile's, or the stream's);
	// the GOP is 2 s of it. Default 15.
	FPS int
	// Codec is the output codec (default H.264).
	Codec codec.Codec
	// Element is an encoder element with its properties, overriding the
	// table's choice (masking/codec): {bitrate_kbps}, {bitrate_bps},
	// {bitrate} (the element's own unit), {gop} and {fps} are
	// substituted; codec.CheckEncoder refuses a string that would ignore
	// the bitrate or the GOP. Empty: the first working encoder of the
	// codec on this gateway, hardware first (ProbeElements).
	Element     string
	BitrateKbps int
	GOP         int
	// Relay, when set, receives the encoded stream in-process as stream
	// Camera (the agent passes its masking/relay server). Nil: encoded and
	// discarded (benchmarks).
	Relay StreamPublisher
	// OnOpen, when set, is called by a LazyEncoder once its encoder opened
	// (at the first frame), so the owner can publish the whole video path.
	OnOpen func()
}

// StreamPublisher serves the encoded streams. An Encoder calls it from
// one goroutine for its camera: PublishAU for every access unit (NAL units
// without start codes), then Unpublish once when its stream ends or
// publishing failed. masking/relay's Server satisfies it. An encoder of
// another codec than H.264 needs a publisher that also implements
// CodecPublisher.
type StreamPublisher interface {
	PublishAU(stream string, au [][]byte) error
	Unpublish(stream string)
}

// CodecPublisher is a StreamPublisher told the codec of a stream before
// its first access unit (the relay's SDP must match it).
type CodecPublisher interface {
	SetCodec(stream string, c codec.Codec) error
}

// withDefaults fills the zero settings.
func (c *EncoderConfig) withDefaults() {
	if c.FPS <= 0 {
		c.FPS = 15
	}
	if c.BitrateKbps <= 0 {
		c.BitrateKbps = 2000
	}
	if c.GOP <= 0 {
		c.GOP = 2 * c.FPS
	}
	if c.Codec == "" {
		c.Codec = codec.H264
	}
}

// element is the encoder element string, settings substituted, and the
// element's name.
func (c *EncoderConfig) element() (string, string, error) {
	if err := codec.CheckEncoder(c.Element, c.Codec); err != nil {
		return "", "", fmt.Errorf("masking: encoder %q: %w", c.Camera, err)
	}
	st := codec.Settings{BitrateKbps: c.BitrateKbps, GOP: c.GOP, FPS: c.FPS}
	if strings.TrimSpace(c.Element) != "" {
		return codec.EncoderString(codec.Element{}, c.Element, st), codec.Elem(c.Element), nil
	}
	els := ProbeElements()
	e, ok := els.Encoder(c.Codec)
	if !ok {
		return "", "", fmt.Errorf("masking: encoder %q: no working %s encoder on this gateway (%s)", c.Camera, c.Codec, els.Skipped(c.Codec, "encoder"))
	}
	return codec.EncoderString(e, "", st), e.Name, nil
}

// appsrcI420 starts an encoding pipeline: OpenCV's writer takes only BGR
// or GRAY8 frames, so the I420 bytes go in as a GRAY8 image of height
// H·3/2 and rawvideoparse reinterprets them.
func appsrcI420(w, h, fps int) string {
	return fmt.Sprintf("appsrc ! rawvideoparse use-sink-caps=false width=%d height=%d format=i420 framerate=%d/1", w, h, fps)
}

// Pipeline returns the GStreamer pipeline string and the encoder element's
// name; the byte stream goes to file descriptor fd.
func (c *EncoderConfig) Pipeline(fd uintptr) (string, string, error) {
	if c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 {
		return "", "", fmt.Errorf("masking: encoder %q: bad size %dx%d", c.Camera, c.Width, c.Height)
	}
	c.withDefaults()
	enc, name, err := c.element()
	if err != nil {
		return "", "", err
	}
	tail := fmt.Sprintf("%s ! %s config-interval=-1 ! %s ! fdsink fd=%d sync=false", enc, c.Codec.Parser(), c.Codec.ByteStreamCaps(), fd)
	if gstOpenCV {
		return appsrcI420(c.Width, c.Height, c.FPS) + " ! queue max-size-buffers=1 ! " + tail, name, nil
	}
	return appsrcGst(c.Width, c.Height) + " ! " + tail, name, nil
}

// appsrcGst starts a gstapp encoding pipeline: the appsrc "velo" takes
// I420 frames (caps set by gstapp's Setup) and holds one frame at most,
// blocking the writer while the encoder is behind (not leaky: as the
// OpenCV path's one-buffer queue); it pushes straight into the encoder,
// on its own streaming thread, with no queue between.
func appsrcGst(w, h int) string {
	return fmt.Sprintf("appsrc name=velo format=time block=true max-bytes=%d", w*h*3/2)
}

// Encoder is a Sink that encodes I420 frames with GStreamer: its pipeline
// starts at an appsrc (masking/gstapp; VELO_GST_PATH=opencv: gocv's
// VideoWriter). The byte stream comes back through a pipe (fdsink)
// and is published into the relay in-process, so no network I/O can stall
// the encoder or its shutdown. Recording reads the relay (see Recorder), so
// it can only ever hold what readers see.
type Encoder struct {
	cfg  EncoderConfig
	elem string // the encoder element's name
	vw   *gocv.VideoWriter
	pipe *gstapp.Pipe
	n    int64 // frames pushed (their timestamps)
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
	p, name, err := cfg.Pipeline(w.Fd())
	if err == nil && cfg.Codec != codec.H264 && cfg.Relay != nil {
		cp, ok := cfg.Relay.(CodecPublisher)
		if !ok {
			err = fmt.Errorf("masking: encoder %q: the relay cannot serve %s", cfg.Camera, cfg.Codec)
		} else {
			err = cp.SetCodec(cfg.Camera, cfg.Codec)
		}
	}
	e := &Encoder{cfg: cfg, elem: name, w: w, done: make(chan error, 1)}
	if err == nil {
		err = e.start(p)
	}
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	go func() { e.done <- e.forward(r) }()
	return e, nil
}

// start starts the pipeline p.
func (e *Encoder) start(p string) error {
	cfg := e.cfg
	if gstOpenCV {
		// GRAY8 frames of height H·3/2 carry the I420 bytes (appsrcI420).
		vw, err := gocv.VideoWriterFile(p, "", float64(cfg.FPS), cfg.Width, cfg.Height*3/2, false)
		if err != nil || !vw.IsOpened() {
			if vw != nil {
				vw.Close()
			}
			return fmt.Errorf("masking: encoder %q: GStreamer pipeline did not start (encoder %q)", cfg.Camera, e.elem)
		}
		e.vw = vw
		return nil
	}
	pipe, err := gstapp.Launch(p)
	if err == nil {
		if err = pipe.Setup(cfg.Width, cfg.Height, cfg.FPS); err == nil {
			err = pipe.Play()
		}
		if err != nil {
			pipe.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("masking: encoder %q: GStreamer pipeline did not start (encoder %q): %w", cfg.Camera, e.elem, err)
	}
	e.pipe = pipe
	return nil
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
	ar.h265 = e.cfg.Codec == codec.H265
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

// Element is the encoder element's name.
func (e *Encoder) Element() string { return e.elem }

// Write encodes one frame; it refuses frames the masker did not pass.
func (e *Encoder) Write(f *Frame) error {
	if !f.Masked {
		return errors.New("masking: refusing to encode an unmasked frame")
	}
	if f.W != e.cfg.Width || f.H != e.cfg.Height {
		return fmt.Errorf("masking: encoder %q: frame %dx%d, encoder %dx%d", e.cfg.Camera, f.W, f.H, e.cfg.Width, e.cfg.Height)
	}
	if e.vw != nil {
		m, err := gocv.NewMatFromBytes(f.H*3/2, f.W, gocv.MatTypeCV8UC1, f.Data)
		if err != nil {
			return err
		}
		defer m.Close()
		return e.vw.Write(m)
	}
	if err := e.pipe.BusError(); err != nil {
		return fmt.Errorf("masking: encoder %q: %w", e.cfg.Camera, err)
	}
	dur := time.Second / time.Duration(e.cfg.FPS)
	pts := time.Duration(e.n) * dur
	e.n++
	return e.pipe.Push(f.Data, pts, dur)
}

// Close flushes the encoder (EOS through a local pipe: nothing on the
// network to wait for), then joins the forwarding goroutine.
func (e *Encoder) Close() error {
	var err error
	if e.vw != nil {
		err = e.vw.Close()
	} else {
		if err = e.pipe.Finish(closeTimeout); err != nil {
			err = fmt.Errorf("masking: encoder %q: flush: %w", e.cfg.Camera, err)
		}
		e.pipe.Close()
	}
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
	cfg       EncoderConfig
	enc       *Encoder
	streamFPS atomic.Int64
	elem      atomic.Pointer[string]
	fps       atomic.Int64 // the frame rate the encoder was opened with
}

// FPS is the frame rate the encoder was opened with (0 before).
func (l *LazyEncoder) FPS() int { return int(l.fps.Load()) }

// SetStreamFPS tells the encoder the stream's frame rate, used when the
// config sets none (the pipeline calls it after each capture open).
func (l *LazyEncoder) SetStreamFPS(fps int) { l.streamFPS.Store(int64(fps)) }

// EncoderPath is the output codec and the encoder element ("" until the
// first frame opened it).
func (l *LazyEncoder) EncoderPath() (codec.Codec, string) {
	c := l.cfg.Codec
	if c == "" {
		c = codec.H264
	}
	if e := l.elem.Load(); e != nil {
		return c, *e
	}
	return c, ""
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
		if c.FPS <= 0 {
			c.FPS = int(l.streamFPS.Load())
		}
		e, err := OpenEncoder(c)
		if err != nil {
			return err
		}
		l.enc = e
		name := e.Element()
		l.elem.Store(&name)
		l.fps.Store(int64(e.cfg.FPS))
		if l.cfg.OnOpen != nil {
			l.cfg.OnOpen()
		}
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
// benchmarks and for checking recorded segments. No frame is dropped: the
// appsink holds four and then holds the decoder back.
func FileOpener(path string) Opener {
	return func(ctx context.Context) (Source, error) {
		c := CaptureConfig{Camera: "file " + path, OpenTimeout: time.Minute, ReadTimeout: time.Minute}
		p := "filesrc location=" + gstQuote(path) + " ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
		var src Source
		var err error
		if gstOpenCV {
			src, err = openCapture(ctx, c, p+"appsink max-buffers=4 sync=false", gocv.VideoCaptureGstreamer, true)
		} else {
			src, err = openApp(ctx, c, p+"appsink name=velo max-buffers=4 sync=false enable-last-sample=false")
		}
		if err != nil {
			return nil, fmt.Errorf("masking: open file %s: %w", path, err)
		}
		return src, nil
	}
}
