package anonymise

import "velo/masking/anonymise/spec"

// Config configures a Stage (masking/anonymise/spec, without OpenCV).
type Config = spec.Config

// Detector names one detector.
type Detector = spec.Detector

// Detectors (spec).
const (
	HOG         = spec.HOG
	FaceFrontal = spec.FaceFrontal
	FaceProfile = spec.FaceProfile
	FullBody    = spec.FullBody
	UpperBody   = spec.UpperBody
	Plate       = spec.Plate
	Motion      = spec.Motion
)
