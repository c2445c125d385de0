package anonymise

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "mog.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// mog is OpenCV's MOG2 background subtractor with the learning rate set
// per frame (gocv v0.32.0 has only the automatic one).
type mog struct{ p C.VeloMOG }

func newMOG(history int, varThreshold float64) *mog {
	return &mog{p: C.velo_mog_new(C.int(history), C.double(varThreshold))}
}

// apply learns src (w×h grey) at rate and writes the foreground mask to fg.
func (m *mog) apply(src []byte, w, h int, fg []byte, rate float64) error {
	if w <= 0 || h <= 0 || len(src) < w*h || len(fg) < w*h {
		return errors.New("background model: bad frame")
	}
	if C.velo_mog_apply(m.p, (*C.uchar)(unsafe.Pointer(&src[0])), C.int(w), C.int(h), (*C.uchar)(unsafe.Pointer(&fg[0])), C.double(rate)) != 0 {
		return errors.New("background model: OpenCV failed")
	}
	return nil
}

func (m *mog) close() { C.velo_mog_close(m.p) }
