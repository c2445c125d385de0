package masking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"velo/masking/codec"
)

// Source yields decoded I420 frames. Read fills f (reallocating f.Data when
// the size changes) and blocks until a frame arrives or the source fails.
// A Source is used by one goroutine.
type Source interface {
	Read(f *Frame) error
	Close() error
}

// Sink consumes masked frames (an encoder). Write is called by one
// goroutine; Close flushes and releases it.
type Sink interface {
	Write(f *Frame) error
	Close() error
}

// Opener opens a Source (a capture connection). It is called again after
// every failure, with jittered backoff.
type Opener func(ctx context.Context) (Source, error)

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	Camera string
	// Open opens the capture; required.
	Open Opener
	// Sink receives masked frames; required.
	Sink Sink
	// Masker decides what happens to each frame; required.
	Masker *Masker
	// Backoff bounds for reconnects (defaults 500 ms … 30 s).
	MinBackoff, MaxBackoff time.Duration
	// Logf receives state changes (never credentials); nil discards.
	Logf func(format string, args ...any)
	// LostAfter: no frame captured for this long means the video is lost
	// (default 10 s). Video calls OnVideo(true, why) then, and
	// OnVideo(false, how long) when frames come again; nil: not told.
	LostAfter time.Duration
	OnVideo   func(lost bool, detail string)
	// CallBound is the longest one step of the capture loop may take
	// (an open or a read: their deadlines) before Alive says the frame
	// path is hung (default 20 s).
	CallBound time.Duration
	// Dynamic, when set, runs on every frame the masker masked, after the
	// static masks and before the encoder (dynamic anonymisation,
	// masking/anonymise). A frame it fails is dropped, never encoded.
	Dynamic FrameStage
}

// FrameStage is a per-frame step on the masked I420 frame, in place. It is
// called by the mask stage only; an error means the frame is not fit to
// be encoded.
type FrameStage interface {
	Apply(f *Frame) error
}

// Pipeline runs capture → mask → encode as two goroutines joined by a
// channel. Run owns them: it returns after every stage has stopped.
type Pipeline struct {
	cfg PipelineConfig

	reconnects  atomic.Uint64
	captured    atomic.Uint64
	encoded     atomic.Uint64
	encodeTime  durations
	snapReq     chan chan *Frame
	rawReq      chan chan *Frame // UnmaskedStill (commission.go)
	free        chan *Frame      // frames to reuse (framesInFlight at most)
	lastErrTime atomic.Int64
	dynDropped  atomic.Uint64

	lastFrame atomic.Int64 // unix nanos of the last frame captured (or Run's start)
	expectBy  atomic.Int64 // unix nanos by which the capture loop must move on
	lastErr   atomic.Pointer[string]
	path      atomic.Pointer[CapturePath] // how the current capture decodes
}

// VideoPath is how a pipeline's video goes: the capture's decoding path
// and the encoder.
type VideoPath struct {
	CapturePath
	OutCodec string `json:"out_codec,omitempty"`
	Encoder  string `json:"encoder,omitempty"`
	OutFPS   int    `json:"out_fps,omitempty"` // the encoder's frame rate (GOP: 2 s of it)
}

// Path returns the current video path (empty fields until known).
func (p *Pipeline) Path() VideoPath {
	var v VideoPath
	if c := p.path.Load(); c != nil {
		v.CapturePath = *c
	}
	if e, ok := p.cfg.Sink.(interface{ EncoderPath() (codec.Codec, string) }); ok {
		c, name := e.EncoderPath()
		v.OutCodec, v.Encoder = string(c), name
	}
	if e, ok := p.cfg.Sink.(interface{ FPS() int }); ok {
		v.OutFPS = e.FPS()
	}
	return v
}

// notePath records the path of a source just opened and gives the sink
// the stream's frame rate.
func (p *Pipeline) notePath(src Source) bool {
	ps, ok := src.(interface{ Path() CapturePath })
	if !ok {
		return false
	}
	c := ps.Path()
	p.path.Store(&c)
	if s, ok := p.cfg.Sink.(interface{ SetStreamFPS(int) }); ok && c.FPS >= 1 && c.FPS <= 120 {
		s.SetStreamFPS(int(c.FPS + 0.5))
	}
	return true
}

// NewPipeline checks cfg (no I/O).
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Open == nil || cfg.Sink == nil || cfg.Masker == nil {
		return nil, fmt.Errorf("masking: pipeline %q: Open, Sink and Masker are required", cfg.Camera)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = 10 * time.Second
	}
	if cfg.CallBound <= 0 {
		cfg.CallBound = 20 * time.Second
	}
	if cfg.OnVideo == nil {
		cfg.OnVideo = func(bool, string) {}
	}
	p := &Pipeline{cfg: cfg, snapReq: make(chan chan *Frame), rawReq: make(chan chan *Frame), free: make(chan *Frame, framesInFlight)}
	p.expect(cfg.CallBound) // about to run
	return p, nil
}

// PipelineStats are the pipeline's counters plus the masker's.
type PipelineStats struct {
	StatsSnapshot
	Captured, Encoded, Reconnects uint64
	EncodeP50, EncodeP99          time.Duration
}

// Stats returns the counters.
func (p *Pipeline) Stats() PipelineStats {
	e50, e99 := p.encodeTime.percentiles()
	return PipelineStats{StatsSnapshot: p.cfg.Masker.Stats(), Captured: p.captured.Load(), Encoded: p.encoded.Load(),
		Reconnects: p.reconnects.Load(), EncodeP50: e50, EncodeP99: e99}
}

// framesInFlight bounds the frames a pipeline keeps for reuse: one in
// each of its two stages, one in the channel between them, one spare. A
// 1080p I420 frame is 3 MB; they are kept and reused, never collected (a
// sync.Pool gives its frames up within two garbage collections, so 3 MB
// frames were allocated again and again, and the heap grew with them).
const framesInFlight = 4

func (p *Pipeline) getFrame() *Frame {
	select {
	case f := <-p.free:
		return f
	default:
		return &Frame{}
	}
}

// putFrame keeps f for reuse (dropped when framesInFlight are kept).
func (p *Pipeline) putFrame(f *Frame) {
	select {
	case p.free <- f:
	default:
	}
}

// Run runs until ctx is done or the sink fails. It always closes the sink.
// Two goroutines carry the frames: capture, and mask-then-encode (the
// encoder's Write only queues the frame for GStreamer's own streaming
// thread, so a stage of its own was one more hand-off per frame).
func (p *Pipeline) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raw := make(chan *Frame, 1) // the appsink upstream drops when full
	var wg sync.WaitGroup
	var sinkErr error
	p.lastFrame.Store(time.Now().UnixNano())
	p.expect(p.cfg.CallBound)
	wg.Add(3)
	go func() { // video lost / restored
		defer wg.Done()
		p.watchVideo(ctx)
	}()
	go func() { // capture
		defer wg.Done()
		defer close(raw)
		p.capture(ctx, raw)
	}()
	go func() { // mask, then encode
		defer wg.Done()
		for f := range raw {
			p.serveRaw(f)
			if v, _ := p.cfg.Masker.Process(f); v == Dropped || v == Masked && !p.dynamic(f) {
				p.putFrame(f)
				continue
			}
			if sinkErr == nil && ctx.Err() == nil && p.cfg.Masker.Admit(f) {
				if err := p.encode(f); err != nil {
					sinkErr = fmt.Errorf("masking: camera %q: encode: %w", p.cfg.Camera, err)
					cancel()
				}
			}
			p.putFrame(f)
		}
	}()
	wg.Wait()
	cerr := p.cfg.Sink.Close()
	if sinkErr != nil {
		return sinkErr
	}
	if cerr != nil {
		return fmt.Errorf("masking: camera %q: close encoder: %w", p.cfg.Camera, cerr)
	}
	return nil
}

// encode writes a frame the masker admitted to the sink.
func (p *Pipeline) encode(f *Frame) error {
	t0 := time.Now()
	if err := p.cfg.Sink.Write(f); err != nil {
		return err
	}
	p.encodeTime.add(time.Since(t0))
	p.encoded.Add(1)
	p.serveSnapshot(f)
	return nil
}

// dynamic runs the Dynamic stage on a masked frame; false: drop it.
func (p *Pipeline) dynamic(f *Frame) bool {
	if p.cfg.Dynamic == nil {
		return true
	}
	if err := p.cfg.Dynamic.Apply(f); err != nil {
		f.Masked = false
		if n := p.dynDropped.Add(1); n == 1 || n%100 == 0 {
			p.cfg.Logf("dynamic masking failed, frame dropped (%d so far): %v", n, err)
		}
		return false
	}
	return true
}

// capture reads frames, reconnecting with jittered exponential backoff.
func (p *Pipeline) capture(ctx context.Context, out chan<- *Frame) {
	backoff := p.cfg.MinBackoff
	for ctx.Err() == nil {
		p.expect(p.cfg.CallBound)
		src, err := p.cfg.Open(ctx)
		if err == nil {
			if p.notePath(src) {
				p.cfg.Logf("capture connected: %s", p.Path().CapturePath)
			} else {
				p.cfg.Logf("capture connected")
			}
			var n int
			n, err = p.readAll(ctx, src, out)
			_ = src.Close()
			if ctx.Err() != nil {
				return
			}
			if n > 0 {
				backoff = p.cfg.MinBackoff
			}
		}
		p.reconnects.Add(1)
		msg := err.Error()
		p.lastErr.Store(&msg)
		p.cfg.Logf("capture failed, reconnecting: %v", err)
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		p.expect(backoff + p.cfg.CallBound) // lost and retrying is alive
		t := time.NewTimer(backoff/2 + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, p.cfg.MaxBackoff)
	}
}

// readAll passes frames on until the source fails (its error) or ctx ends.
func (p *Pipeline) readAll(ctx context.Context, src Source, out chan<- *Frame) (int, error) {
	n := 0
	for ctx.Err() == nil {
		p.expect(p.cfg.CallBound)
		f := p.getFrame()
		if err := src.Read(f); err != nil {
			p.putFrame(f)
			return n, err
		}
		if n++; n == 1 {
			p.lastErr.Store(nil) // streaming again: the last failure is over
		}
		f.Captured = time.Now()
		p.lastFrame.Store(f.Captured.UnixNano())
		f.Seq = p.captured.Add(1)
		select {
		case out <- f:
		case <-ctx.Done():
			p.putFrame(f)
			return n, ctx.Err()
		}
	}
	return n, ctx.Err()
}

// expect records that the capture loop moves on within d (see Alive).
func (p *Pipeline) expect(d time.Duration) { p.expectBy.Store(time.Now().Add(d).UnixNano()) }

// Alive reports whether the frame path is alive: its capture loop is
// streaming or retrying, not blocked past the bound of the step it is in
// (a call that outlived its deadline, or an encoder that stopped taking
// frames). A pipeline not run within CallBound of NewPipeline, or
// CallBound after Run returned, is not alive.
func (p *Pipeline) Alive() bool {
	by := p.expectBy.Load()
	return by != 0 && time.Now().UnixNano() < by
}

// watchVideo tells OnVideo when no frame has come for LostAfter, and when
// frames come again, until ctx ends.
func (p *Pipeline) watchVideo(ctx context.Context) {
	tick := time.NewTicker(min(p.cfg.LostAfter/4, time.Second))
	defer tick.Stop()
	lost := false
	var lostAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		since := time.Since(time.Unix(0, p.lastFrame.Load()))
		switch {
		case !lost && since >= p.cfg.LostAfter:
			lost, lostAt = true, time.Now()
			why := "no frame captured for " + since.Round(time.Second).String()
			if e := p.lastErr.Load(); e != nil {
				why += ": " + *e
			}
			p.cfg.OnVideo(true, why+"; reconnecting")
		case lost && since < p.cfg.LostAfter:
			lost = false
			p.cfg.OnVideo(false, "frames again after "+time.Since(lostAt).Round(time.Second).String()+" without")
		}
	}
}

func (p *Pipeline) serveSnapshot(f *Frame) {
	select {
	case reply := <-p.snapReq:
		c := &Frame{W: f.W, H: f.H, Data: append([]byte(nil), f.Data...), Seq: f.Seq, Generation: f.Generation, Masked: true}
		reply <- c
	default:
	}
}

// Snapshot returns a copy of the next frame that is encoded (so it is
// masked exactly as the stream is), or an error when none comes before ctx
// ends.
func (p *Pipeline) Snapshot(ctx context.Context) (*Frame, error) {
	reply := make(chan *Frame, 1)
	select {
	case p.snapReq <- reply:
	case <-ctx.Done():
		return nil, fmt.Errorf("masking: camera %q: no frame for a snapshot: %w", p.cfg.Camera, ctx.Err())
	}
	select {
	case f := <-reply:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// JPEG encodes a masked frame. It refuses a frame the masker did not pass.
func JPEG(f *Frame, quality int) ([]byte, error) {
	if !f.Masked {
		return nil, errors.New("masking: refusing to encode an unmasked frame")
	}
	y, u, v := f.Planes()
	img := &image.YCbCr{Y: y, Cb: u, Cr: v, YStride: f.W, CStride: f.W / 2, SubsampleRatio: image.YCbCrSubsampleRatio420, Rect: image.Rect(0, 0, f.W, f.H)}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
