package masking

// ViewCheck verifies from the pixels that a frame shows the approved view
// (masking/viewcheck provides one, on OpenCV). The mask stage calls Check
// for every frame of an approved view, on the raw I420 frame, before it is
// masked; Check must not keep f. A frame whose check fails is never
// encoded.
type ViewCheck interface {
	Check(f *Frame, view string) ViewVerdict
}

// ViewVerdict is what a view check found.
type ViewVerdict struct {
	OK bool
	// Reason names the failed check: shift, scale, rotation, obstruction,
	// defocus, scene, no_reference.
	Reason string
	// ShiftX, ShiftY: the picture's displacement against the reference,
	// in pixels of the frame; Scale (1 = none) and Rotation (degrees) where
	// measured; Score: the structural match, 1 = identical, 0 = unrelated.
	ShiftX, ShiftY  float64
	Scale, Rotation float64
	Score           float64
}
