// Package masking will hold Velo's video path: capture, masks burned into
// I420 frames before encoding, and the outputs. It is the only package
// allowed to import gocv. It is not built yet (see README, Status).
package masking
