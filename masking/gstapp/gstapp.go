// Package gstapp is the frame path's small cgo layer over GStreamer's
// appsink and appsrc: a capture pipeline ends in an appsink with I420 caps
// and hands each decoded frame to Go with one copy into the caller's
// packed I420 buffer (the decoder's buffer goes back to its pool at once:
// the masks are burned into the copy, never into a frame the decoder still
// references); an encode pipeline starts at an appsrc with I420 caps and
// takes each masked frame with one copy into a pooled GstBuffer. No
// OpenCV Mat, no rawvideoparse, no thread of ours per frame: Pull and Push
// run on the caller's goroutine and every wait is bounded.
//
// A Pipe is used by one goroutine at a time; Close may come from another
// only once that goroutine has stopped calling it.
package gstapp

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0
#include <stdlib.h>
#include <string.h>
#include "gstapp.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

var (
	initOnce sync.Once
	initErr  error
)

// Init initialises GStreamer once per process (also safe beside OpenCV's
// own initialisation: gst_init is idempotent and locked).
func Init() error {
	initOnce.Do(func() {
		var cerr *C.char
		if C.velo_gst_init(&cerr) != 0 {
			initErr = fmt.Errorf("gstapp: %s", takeErr(cerr))
		}
	})
	return initErr
}

// Live is how many pipelines this package has made and not closed.
func Live() int { return int(C.velo_live_pipelines()) }

// ErrTimeout: nothing came (or went) within the call's bound.
var ErrTimeout = errors.New("gstapp: timed out")

// ErrEOS: the stream ended.
var ErrEOS = errors.New("gstapp: end of stream")

func takeErr(c *C.char) string {
	if c == nil {
		return "unknown error"
	}
	defer C.velo_free(unsafe.Pointer(c))
	return C.GoString(c)
}

// Pipe is a GStreamer pipeline whose app element is named "velo": an
// appsink (Pull, Take) or an appsrc (Setup, Push, Finish).
type Pipe struct {
	p *C.velo_pipe
}

// Launch parses desc (gst-launch syntax; never put a secret in it: use
// SetString). The pipeline is not started.
func Launch(desc string) (*Pipe, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	cs := C.CString(desc)
	defer C.free(unsafe.Pointer(cs))
	var cerr *C.char
	p := C.velo_launch(cs, &cerr)
	if p == nil {
		return nil, fmt.Errorf("gstapp: %s", takeErr(cerr))
	}
	return &Pipe{p: p}, nil
}

// SetString sets a string property of the element named element (how
// credentials reach rtspsrc: never through the launch string).
func (p *Pipe) SetString(element, prop, value string) error {
	ce, cp, cv := C.CString(element), C.CString(prop), C.CString(value)
	defer C.free(unsafe.Pointer(ce))
	defer C.free(unsafe.Pointer(cp))
	defer func() {
		C.memset(unsafe.Pointer(cv), 0, C.size_t(len(value)))
		C.free(unsafe.Pointer(cv))
	}()
	var cerr *C.char
	if C.velo_set_string(p.p, ce, cp, cv, &cerr) != 0 {
		return fmt.Errorf("gstapp: %s.%s: %s", element, prop, takeErr(cerr))
	}
	return nil
}

// Play starts the pipeline (live sources connect in the background).
func (p *Pipe) Play() error {
	var cerr *C.char
	if C.velo_play(p.p, &cerr) != 0 {
		return fmt.Errorf("gstapp: %s", takeErr(cerr))
	}
	return nil
}

// Close stops the pipeline and frees it. It may block inside GStreamer's
// teardown: a caller that must not hang runs it under its own deadline.
func (p *Pipe) Close() {
	if p.p != nil {
		C.velo_close(p.p)
		p.p = nil
	}
}

// Info is what a pulled frame's caps say.
type Info struct {
	W, H       int
	FPSN, FPSD int // frame rate (0/1: unknown)
	PackedI420 int // bytes of the frame as packed I420 (W·H·3/2)
}

// FPS is the frame rate (0: unknown).
func (i Info) FPS() float64 {
	if i.FPSN <= 0 || i.FPSD <= 0 {
		return 0
	}
	return float64(i.FPSN) / float64(i.FPSD)
}

// Pull waits at most timeout for the next decoded frame and holds it
// until Take (or the next Pull). ErrTimeout: none came; ErrEOS: the
// stream ended; another error: the pipeline posted it on its bus.
func (p *Pipe) Pull(timeout time.Duration) (Info, error) {
	var w, h, fn, fd C.int
	var cerr *C.char
	switch C.velo_pull(p.p, C.int64_t(timeout.Nanoseconds()), &w, &h, &fn, &fd, &cerr) {
	case 1:
		return Info{W: int(w), H: int(h), FPSN: int(fn), FPSD: int(fd), PackedI420: int(w) * int(h) * 3 / 2}, nil
	case 0:
		return Info{}, ErrTimeout
	case -1:
		return Info{}, ErrEOS
	}
	return Info{}, fmt.Errorf("gstapp: %s", takeErr(cerr))
}

// Take copies the pulled frame into dst (packed I420 of exactly
// Info.PackedI420 bytes; W and H even) and releases it.
func (p *Pipe) Take(dst []byte) error {
	if len(dst) == 0 || C.velo_take(p.p, (*C.uint8_t)(unsafe.Pointer(&dst[0])), C.size_t(len(dst))) != 0 {
		return errors.New("gstapp: frame is not an even-sized I420 frame of the buffer's size")
	}
	return nil
}

// Setup gives the appsrc its I420 caps and its buffer pool.
func (p *Pipe) Setup(w, h, fps int) error {
	var cerr *C.char
	if C.velo_src_setup(p.p, C.int(w), C.int(h), C.int(fps), &cerr) != 0 {
		return fmt.Errorf("gstapp: %s", takeErr(cerr))
	}
	return nil
}

// Push copies one packed I420 frame into a pooled buffer and queues it
// with its timestamp. It blocks while the appsrc's bounded queue is full
// (the encoder is behind).
func (p *Pipe) Push(frame []byte, pts, dur time.Duration) error {
	if len(frame) == 0 {
		return errors.New("gstapp: empty frame")
	}
	var cerr *C.char
	if C.velo_push(p.p, (*C.uint8_t)(unsafe.Pointer(&frame[0])), C.size_t(len(frame)), C.uint64_t(pts), C.uint64_t(dur), &cerr) != 0 {
		return fmt.Errorf("gstapp: push: %s", takeErr(cerr))
	}
	return nil
}

// BusError returns an error the pipeline posted, if any (no wait).
func (p *Pipe) BusError() error {
	var cerr *C.char
	if C.velo_bus_error(p.p, &cerr) == 1 {
		return fmt.Errorf("gstapp: %s", takeErr(cerr))
	}
	return nil
}

// Finish ends the appsrc's stream and waits at most timeout for the end to
// reach the sink (everything queued is encoded and written).
func (p *Pipe) Finish(timeout time.Duration) error {
	var cerr *C.char
	switch C.velo_finish(p.p, C.int64_t(timeout.Nanoseconds()), &cerr) {
	case 1:
		return nil
	case 0:
		return ErrTimeout
	}
	return fmt.Errorf("gstapp: %s", takeErr(cerr))
}
