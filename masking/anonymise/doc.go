// Package anonymise masks people (and plates) that move: dynamic
// anonymisation for sites where nobody may be identifiable (G-4.5 tourist
// webcams, G-5.3 traffic cameras) and for data-subject copies (G-3.5).
//
// A Stage runs on the I420 frame in the mask stage of masking.Pipeline,
// after the static masks and before the encoder. Every Every-th frame a
// downscaled grey copy goes to one detector goroutine (the gocv objects are
// used by it alone): OpenCV's HOG people detector, Debian's Haar cascades
// (opencv-data: faces, bodies, plates) and a background-subtraction motion
// detector, as the view's config selects. Between detections an IoU tracker
// carries each box forward at its measured velocity; every box is grown by
// a margin (more the longer it goes unseen) and masked like a static mask.
//
// It fails closed: when a detection is not back within its deadline, when
// the detector errs, or when the zone is too dark to trust it, the whole
// dynamic_zone is masked for those frames (a zone fallback). Nothing is
// downloaded: the cascades are read from the directory opencv-data
// installs.
package anonymise
