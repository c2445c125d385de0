package main

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"velo/masking"
	"velo/masking/maskspec"
)

// maskFloorFigures reports each style's masking CPU per frame against a
// memcpy of one I420 frame (the bytes the pipeline moves), then the kernels
// against OpenCV's own on the same bounding boxes and fill against a memcpy
// of the bytes it covers. It returns the masking CPU by "style/cover=N".
func maskFloorFigures(frames [][]byte, runs int) (map[string]float64, error) {
	// The floors copy between the same frames the masks write, in the
	// same cache state (the frames do not fit in the cache).
	floor := maskCPUPerFrame(frames, runs, func(i int, f *masking.Frame) { copy(f.Data, frames[(i+1)%len(frames)]) })
	fmt.Printf("floor: memcpy of one I420 frame %.3f ms (OpenCV threads: %d)\n", floor*1e3, setCVThreads(1))
	floorGoal := map[maskspec.Style][2]float64{maskspec.StyleFill: {0.1, 0.4}, maskspec.StylePixelate: {1.0, 3.0}, maskspec.StyleBlur: {1.5, 5.0}}
	maskCPU := map[string]float64{}
	for _, st := range benchStyles() {
		for ci, cover := range benchCovers() {
			r, err := benchRaster(st, octagon(cover))
			if err != nil {
				return nil, err
			}
			per := maskCPUPerFrame(frames, runs, func(_ int, f *masking.Frame) { _ = r.Apply(f) })
			key := fmt.Sprintf("%s/cover=%d", st, int(cover*100))
			maskCPU[key] = per
			g := floorGoal[st][ci]
			report("MaskFloor/"+key, per/floor, fmt.Sprintf("≤ %.1f", g), per/floor <= g, fmt.Sprintf("(%.3f ms, octagon covering %.1f%%)", per*1e3, r.Covered()*100))
			if err := kernelFigure(frames, runs, st, key, per, r); err != nil {
				return nil, err
			}
		}
	}
	return maskCPU, nil
}

// kernelFigure: pixelate and blur against OpenCV's own kernel on the same
// bounding boxes (goal ≤ 1.1); fill against one memcpy of the bytes it
// covers (goal ≤ 1.5).
func kernelFigure(frames [][]byte, runs int, st maskspec.Style, key string, per float64, r *masking.Raster) error {
	lbox, cbox, n := r.Footprint()
	if st == maskspec.StyleFill {
		cp := maskCPUPerFrame(frames, runs, func(i int, f *masking.Frame) { copy(f.Data[:n], frames[(i+1)%len(frames)]) })
		report("FillVsCopy/"+key, per/cp, "≤ 1.5", per/cp <= 1.5, fmt.Sprintf("(fill %.3f ms, memcpy of the %d covered I420 bytes %.3f ms)", per*1e3, n, cp*1e3))
		return nil
	}
	k := newCVKernel(st, maskspec.FloorBlock(W), maskspec.FloorStrength(W), lbox, cbox)
	defer k.close()
	cv := maskCPUPerFrame(frames, runs, k.apply)
	if k.err != nil {
		return k.err
	}
	report("KernelVsOpenCV/"+key, per/cv, "≤ 1.1", per/cv <= 1.1, fmt.Sprintf("(velo %.3f ms on the octagon, OpenCV %.3f ms on its bounding box)", per*1e3, cv*1e3))
	return nil
}

// benchRaster rasterises one mask of style st (block 16 and strength 15,
// raised to the floors for 1080p as the agent does).
func benchRaster(st maskspec.Style, poly []maskspec.Point) (*masking.Raster, error) {
	set := maskspec.MaskSet{Camera: "bench", Masks: []maskspec.Mask{{Name: "bench", Polygon: poly, Style: st, Block: 16, Strength: 15}}}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	return masking.Rasterize(&set, W, H)
}

// maskCPUPerFrame is the median CPU of apply on one frame (fresh frames
// each pass; the copy is not timed).
func maskCPUPerFrame(frames [][]byte, runs int, apply func(int, *masking.Frame)) float64 {
	work := make([]*masking.Frame, len(frames))
	for i := range work {
		work[i] = &masking.Frame{W: W, H: H, Data: make([]byte, len(frames[i]))}
	}
	return median(runs, func() float64 {
		var total float64
		for rep := 0; rep < 10; rep++ {
			for i := range work {
				copy(work[i].Data, frames[i])
			}
			total += cpuPerOp(len(work), func(i int) { apply(i, work[i]) })
		}
		return total / 10
	})
}

// cvKernel is what a user of OpenCV alone would run on a rectangle of each
// I420 plane: pixelate = area resize down, nearest resize up in place;
// blur = box filter into a scratch, copied back. Mats are views (no copy).
type cvKernel struct {
	st      maskspec.Style
	block   int
	radius  int
	boxes   [3]image.Rectangle
	scratch [3]gocv.Mat
	err     error
}

func newCVKernel(st maskspec.Style, block, radius int, lbox, cbox image.Rectangle) *cvKernel {
	k := &cvKernel{st: st, block: block, radius: radius, boxes: [3]image.Rectangle{lbox, cbox, cbox}}
	for i := range k.scratch {
		k.scratch[i] = gocv.NewMat()
	}
	return k
}

func (k *cvKernel) close() {
	for i := range k.scratch {
		k.scratch[i].Close()
	}
}

func (k *cvKernel) apply(_ int, f *masking.Frame) {
	y, u, v := f.Planes()
	for i, p := range [][]byte{y, u, v} {
		w, h, b, r := f.W, f.H, k.block, k.radius
		if i > 0 {
			w, h, b, r = w/2, h/2, max(b/2, 1), max(r/2, 1)
		}
		plane, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC1, p)
		if err != nil {
			k.err = err
			return
		}
		roi := plane.Region(k.boxes[i])
		sz := k.boxes[i].Size()
		if k.st == maskspec.StylePixelate {
			gocv.Resize(roi, &k.scratch[i], image.Pt((sz.X+b-1)/b, (sz.Y+b-1)/b), 0, 0, gocv.InterpolationArea)
			gocv.Resize(k.scratch[i], &roi, sz, 0, 0, gocv.InterpolationNearestNeighbor)
		} else {
			gocv.Blur(roi, &k.scratch[i], image.Pt(2*r+1, 2*r+1))
			k.scratch[i].CopyTo(&roi)
		}
		roi.Close()
		plane.Close()
	}
}
