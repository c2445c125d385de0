package masking

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"
)

// UnmaskedStill returns a copy of the next frame captured, before it is
// masked: the installer console shows it only inside an audited,
// time-limited commissioning session, through CommissioningJPEG, which
// burns a watermark in. It is never encoded to any output.
func (p *Pipeline) UnmaskedStill(ctx context.Context) (*Frame, error) {
	reply := make(chan *Frame, 1)
	select {
	case p.rawReq <- reply:
	case <-ctx.Done():
		return nil, fmt.Errorf("masking: camera %q: no frame for a commissioning still: %w", p.cfg.Camera, ctx.Err())
	}
	select {
	case f := <-reply:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serveRaw answers a pending UnmaskedStill with a copy of f (not masked).
func (p *Pipeline) serveRaw(f *Frame) {
	select {
	case reply := <-p.rawReq:
		reply <- &Frame{W: f.W, H: f.H, Data: append([]byte(nil), f.Data...), Seq: f.Seq, Captured: f.Captured}
	default:
	}
}

// CommissioningJPEG encodes an unmasked frame for a commissioning session
// with the watermark lines (operator, time) burned into the pixels,
// repeated down the picture, so a screenshot of it says who saw it when.
func CommissioningJPEG(f *Frame, lines []string, quality int) ([]byte, error) {
	if f.W <= 0 || f.H <= 0 || len(f.Data) < f.W*f.H*3/2 {
		return nil, errors.New("masking: commissioning still: not an I420 frame")
	}
	if len(lines) == 0 {
		return nil, errors.New("masking: commissioning still: a watermark is required")
	}
	yuv, err := gocv.NewMatFromBytes(f.H*3/2, f.W, gocv.MatTypeCV8U, f.Data)
	if err != nil {
		return nil, err
	}
	defer yuv.Close()
	bgr := gocv.NewMat()
	defer bgr.Close()
	gocv.CvtColor(yuv, &bgr, gocv.ColorYUVToBGRIYUV)
	scale := float64(f.W) / 900
	step := int(28 * scale * float64(len(lines)+1))
	for y := int(30 * scale); y < f.H; y += max(step, 1) * 3 {
		for i, l := range lines {
			at := image.Pt(int(10*scale), y+i*int(28*scale))
			gocv.PutText(&bgr, l, at, gocv.FontHersheySimplex, scale*0.8, color.RGBA{A: 255}, max(int(4*scale), 2))
			gocv.PutText(&bgr, l, at, gocv.FontHersheySimplex, scale*0.8, color.RGBA{R: 255, G: 255, B: 255, A: 255}, max(int(1.5*scale), 1))
		}
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, bgr, []int{gocv.IMWriteJpegQuality, quality})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
