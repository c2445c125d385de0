package masking

import (
	"bufio"
	"io"
)

// auReader splits an H.264 (or, h265 set, H.265) Annex-B byte stream
// into access units. A new AU starts at an access unit delimiter,
// parameter set or (prefix) SEI that follows a slice, or at a slice that
// starts a picture (H.264 first_mb_in_slice 0, H.265
// first_slice_segment_in_pic_flag) that follows a slice.
type auReader struct {
	h265 bool
	r    *bufio.Reader
	buf  []byte
	cur  [][]byte
	vcl  bool
	eof  bool
}

func newAUReader(r io.Reader) *auReader { return &auReader{r: bufio.NewReaderSize(r, 1<<20)} }

// next returns the next complete NAL unit (without start code).
func (a *auReader) nextNAL() ([]byte, error) {
	for {
		// find the first start code
		i := startCode(a.buf, 0)
		if i >= 0 {
			j := startCode(a.buf, i+3)
			if j >= 0 {
				nal := trimZeros(a.buf[i+3 : j])
				a.buf = a.buf[j:]
				if len(nal) > 0 {
					return append([]byte(nil), nal...), nil
				}
				continue
			}
		}
		if a.eof {
			if i >= 0 && len(a.buf) > i+3 {
				nal := append([]byte(nil), a.buf[i+3:]...)
				a.buf = nil
				return nal, nil
			}
			return nil, io.EOF
		}
		chunk := make([]byte, 64<<10)
		n, err := a.r.Read(chunk)
		a.buf = append(a.buf, chunk[:n]...)
		if err == io.EOF {
			a.eof = true
		} else if err != nil {
			return nil, err
		}
	}
}

func startCode(b []byte, from int) int {
	for i := from; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			return i
		}
	}
	return -1
}

// trimZeros drops the trailing zero of a 4-byte start code that follows.
func trimZeros(n []byte) []byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	return n
}

// NextAU returns the next access unit.
func (a *auReader) NextAU() ([][]byte, error) {
	for {
		nal, err := a.nextNAL()
		if err != nil {
			if len(a.cur) > 0 && err == io.EOF {
				au := a.cur
				a.cur, a.vcl = nil, false
				return au, nil
			}
			return nil, err
		}
		isVCL, boundary := a.classify(nal)
		boundary = boundary && a.vcl
		if boundary {
			au := a.cur
			a.cur, a.vcl = [][]byte{nal}, isVCL
			return au, nil
		}
		a.cur = append(a.cur, nal)
		a.vcl = a.vcl || isVCL
	}
}

// classify says whether nal is a slice, and whether it starts a new
// access unit when it follows a slice.
func (a *auReader) classify(nal []byte) (vcl, starts bool) {
	if a.h265 {
		if len(nal) < 2 {
			return false, false
		}
		typ := (nal[0] >> 1) & 0x3f
		if typ <= 31 {
			return true, len(nal) > 2 && nal[2]&0x80 != 0 // first_slice_segment_in_pic_flag
		}
		return false, typ >= 32 && typ <= 35 || typ == 39 // VPS, SPS, PPS, AUD, prefix SEI
	}
	typ := nal[0] & 0x1f
	if typ >= 1 && typ <= 5 {
		return true, len(nal) > 1 && nal[1]&0x80 != 0 // first_mb_in_slice == 0
	}
	return false, typ == 9 || typ == 7 || typ == 8 || typ == 6
}
