// Package masking is Velo's video path: it promises that unmasked pixels
// never leave the gateway. It is the only Velo package that imports gocv.
//
// A Pipeline (pipeline.go) runs three stages as goroutines joined by
// channels, and Run joins them all before it returns:
//
//   - capture: an Opener connects to the camera (gst.go: GStreamer rtspsrc
//     decoding to I420, or OpenCV's FFmpeg backend converted to I420) and is
//     called again, with jittered backoff, after every failure;
//   - mask: the Masker (masker.go) burns the current view's masks into each
//     I420 Frame in place, through a Raster of row spans built once per mask
//     set and resolution (raster.go);
//   - encode: the Sink, an Encoder or LazyEncoder (gst.go), encodes H.264
//     with GStreamer and hands the access units (annexb.go splits the byte
//     stream) to a StreamPublisher, the relay of masking/relay in the agent.
//
// Outputs: the RTSP relay; the Recorder (recorder.go), which records MKV
// segments of the masked stream as the relay serves it, so a recording holds
// only what an authorised reader sees; Pipeline.Snapshot with JPEG.
//
// It fails closed: a frame whose view is not approved, whose view has no
// mask set, that cannot be masked or that was captured while the camera
// settled is dropped or blanked (maskspec.FailDrop, maskspec.FailBlank);
// Masker.Admit refuses a frame masked under an older generation of masks or
// view, and the Encoder and JPEG refuse any frame not marked masked.
//
// SelfTest (selftest.go) proves, with no camera, that masking and the OpenCV
// linked on this machine do what they should. Mask geometry, styles, fail
// modes and mask files are in masking/maskspec, which does not need OpenCV.
// docs/masking.md describes the design and its tests.
package masking
