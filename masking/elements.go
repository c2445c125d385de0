package masking

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"velo/masking/codec"
	"velo/masking/gstapp"
)

// Which codec elements work on this gateway is found by running them, not
// by asking a registry: an element that is registered may still fail (a
// hardware block the kernel does not expose), and gst-inspect-1.0 would
// need the tools package on the gateway (and under qemu would run the
// build machine's own). Each encoder of the table (masking/codec) encodes
// a few frames through the same appsrc path (masking/gstapp) the frame
// path uses, into a file; each decoder decodes the first working
// encoder's output back to I420 frames in the same kind of pipeline. An element that is
// missing, or present but failing (a hardware block the kernel does not
// expose), is skipped for the next one, and the probe says why.

// ElementStatus is one codec element as probed on this gateway.
type ElementStatus struct {
	Name     string `json:"name"`
	Codec    string `json:"codec"`
	Role     string `json:"role"` // decoder | encoder
	Family   string `json:"family"`
	Hardware bool   `json:"hardware"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail"`
}

// Elements is what the probe found, in the table's order of preference.
type Elements struct {
	List   []ElementStatus `json:"elements"`
	TookMS float64         `json:"took_ms"`
}

// Decoder is c's first working decoder, hardware first.
func (e *Elements) Decoder(c codec.Codec) (codec.Element, bool) {
	return e.first(c, "decoder", codec.Decoders(c))
}

// Encoder is c's first working encoder, hardware first.
func (e *Elements) Encoder(c codec.Codec) (codec.Element, bool) {
	return e.first(c, "encoder", codec.Encoders(c))
}

func (e *Elements) first(c codec.Codec, role string, table []codec.Element) (codec.Element, bool) {
	for _, s := range e.List {
		if s.OK && s.Role == role && s.Codec == string(c) {
			for _, t := range table {
				if t.Name == s.Name {
					return t, true
				}
			}
		}
	}
	return codec.Element{}, false
}

// Skipped lists, for c and role, the elements preferred to the one used
// that did not work, with why ("" when the first choice works).
func (e *Elements) Skipped(c codec.Codec, role string) string {
	var s []string
	for _, st := range e.List {
		if st.Codec != string(c) || st.Role != role {
			continue
		}
		if st.OK {
			break
		}
		if st.Detail != "missing" {
			s = append(s, st.Name+" ("+st.Detail+")")
		}
	}
	return strings.Join(s, ", ")
}

var (
	probeOnce sync.Once
	probed    *Elements
	// override replaces the probe's result (tests only: an element that
	// fails on a gateway).
	override atomic.Pointer[Elements]
)

// ProbeElements runs the probe once per process and returns its result.
func ProbeElements() *Elements {
	if o := override.Load(); o != nil {
		return o
	}
	probeOnce.Do(func() { probed = probeElements() })
	return probed
}

// probeSize is small and a multiple of 16, as hardware encoders want.
const probeW, probeH, probeFrames = 320, 240, 6

func probeElements() *Elements {
	t0 := time.Now()
	out := &Elements{}
	dir, err := os.MkdirTemp("", "velo-probe-")
	if err != nil {
		for _, c := range codec.All {
			for _, e := range append(codec.Encoders(c), codec.Decoders(c)...) {
				out.List = append(out.List, status(e, false, "no temporary directory: "+err.Error()))
			}
		}
		return out
	}
	defer os.RemoveAll(dir)
	for _, c := range codec.All {
		var sample *codec.Element
		for i, e := range codec.Encoders(c) {
			file := filepath.Join(dir, fmt.Sprintf("%s-enc%d", c, i))
			err := withDeadline(func() error { return probeEncoder(e, file) })
			out.List = append(out.List, status(e, err == nil, detail(err, "encoded %d frames of %dx%d", probeFrames, probeW, probeH)))
			if err == nil && sample == nil {
				sample = &e
			}
		}
		for i, d := range codec.Decoders(c) {
			if sample == nil {
				out.List = append(out.List, status(d, false, "not probed: no working "+string(c)+" encoder to make a sample"))
				continue
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-dec%d", c, i))
			err := withDeadline(func() error { return probeDecoder(d, *sample, file) })
			out.List = append(out.List, status(d, err == nil, detail(err, "decoded %dx%d from %s", probeW, probeH, sample.Name)))
		}
	}
	out.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	return out
}

func status(e codec.Element, ok bool, d string) ElementStatus {
	role := "decoder"
	if e.Encoder {
		role = "encoder"
	}
	return ElementStatus{Name: e.Name, Codec: string(e.Codec), Role: role, Family: e.Family, Hardware: e.Hardware(), OK: ok, Detail: d}
}

func detail(err error, format string, a ...any) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf(format, a...)
}

// errMissing: GStreamer could not build the pipeline (the element is not
// installed, or takes other properties).
const errMissing = "missing"

// probeDeadline bounds one probe (software codecs take milliseconds).
const probeDeadline = 10 * time.Second

// gradientFrame draws frame i of a moving gradient (what an encoder
// meets, unlike noise, which openh264enc refuses at low bitrates).
func gradientFrame(f *Frame, i int) {
	y, u, v := f.Planes()
	for r := 0; r < f.H; r++ {
		for c := 0; c < f.W; c++ {
			y[r*f.W+c] = byte(16 + (r+c+8*i)%200)
		}
	}
	for j := range u {
		u[j], v[j] = byte(96+j%64), byte(160-j%64)
	}
}

// withDeadline bounds one probe: a hardware element may hang in its
// driver; the probe then moves on (the call is left behind).
func withDeadline(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(probeDeadline):
		return fmt.Errorf("hung for %v", probeDeadline)
	}
}

// probeEncoder encodes probeFrames through e (one of codec's encoders),
// or through enc then decoder dec, into file; it checks the file: a
// byte stream, or (with a decoder) I420 frames of the probe's size.
func probeEncoder(e codec.Element, file string) error {
	return probePipeline(e, nil, file)
}

func probeDecoder(d, enc codec.Element, file string) error {
	return probePipeline(enc, &d, file)
}

// probePipeline runs the probe through the same appsrc path the encoder
// uses (masking/gstapp): a pipeline that does not build (an element
// missing or refusing its properties) is "missing".
func probePipeline(enc codec.Element, dec *codec.Element, file string) error {
	es := codec.EncoderString(enc, "", codec.Settings{BitrateKbps: 1000, GOP: 3, FPS: 10})
	tail := enc.Codec.ByteStreamCaps()
	if dec != nil {
		tail = dec.Template + " ! videoconvert ! video/x-raw,format=I420"
	}
	p := fmt.Sprintf("%s ! %s ! %s ! %s ! filesink location=%s", appsrcGst(probeW, probeH), es, enc.Codec.Parser(), tail, gstQuote(file))
	pipe, err := gstapp.Launch(p)
	if err != nil {
		return fmt.Errorf(errMissing)
	}
	defer pipe.Close()
	if err := pipe.Setup(probeW, probeH, 10); err != nil {
		return err
	}
	if err := pipe.Play(); err != nil {
		return fmt.Errorf("start: %v", err)
	}
	f := NewFrame(probeW, probeH)
	for i := 0; i < probeFrames; i++ {
		gradientFrame(f, i)
		if err := pipe.Push(f.Data, time.Duration(i)*100*time.Millisecond, 100*time.Millisecond); err != nil {
			return fmt.Errorf("write: %v", err)
		}
	}
	if err := pipe.Finish(probeDeadline); err != nil {
		return fmt.Errorf("close: %v", err)
	}
	st, err := os.Stat(file)
	switch {
	case err != nil || st.Size() == 0:
		return fmt.Errorf("produced nothing")
	case dec != nil && st.Size()%int64(probeW*probeH*3/2) != 0:
		return fmt.Errorf("decoded %d bytes, not %dx%d I420 frames", st.Size(), probeW, probeH)
	}
	return nil
}
