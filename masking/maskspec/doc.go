// Package maskspec describes privacy masks without touching pixels: polygons
// in normalized image coordinates (Point), styles (fill, pixelate, blur,
// full), fill colours in BT.601 YUV, mask sets per camera and view with their
// validation (MaskSet.Validate, ErrInvalidMask), the fail modes (FailDrop,
// FailBlank) and YAML mask files (LoadMaskFile). It does not import gocv, so
// what only describes masks (configuration, the dossier) need not link
// OpenCV; package masking applies the masks.
package maskspec
