// Package viewcheck verifies from the pixels that a camera shows its
// approved view: it provides masking.ViewCheck on OpenCV (gocv).
//
// A Reference is an approved view's appearance: the frame's luma downscaled
// to RefWidth pixels wide, with every pixel a mask of the view touches
// excluded and filled, so that nothing masked is ever stored. It is saved
// as one self-describing file (a PGM with a JSON header, see Encode) whose
// SHA256 goes into the audit log and the dossier.
//
// A Verifier compares each frame with the references of its view. The
// frame's luma is downscaled once (INTER_AREA halvings over the Y plane,
// no copy) and turned into structure: the gradient of the log luma. The
// log turns brightness, exposure and gamma changes and shadows into
// offsets or gains that the gradient or the normalisation removes; masked
// regions are excluded from everything.
//
// Every frame: the score, the normalised correlation of the signed
// gradients of frame and reference at half size, the frame shifted back
// where the last deep check found it (the lower of the score over every
// valid pixel and the score over the distinctive blocks alone: repeating
// texture, a fence, tiles, a brick wall, matches itself shifted by its
// period and must not vouch for a moved view); the sharpness at half size; and
// three probes at half size, every fourth row: the score one pixel away
// in each direction (a bump just over the limit keeps a fair score on
// coarse textures), against the reference mirrored three ways (a roughly
// symmetric scene keeps a fair score when flipped), and the fraction of
// textured blocks gone flat (an object over part of the lens leaves the
// rest matching). An alarm (the score below MinScore or well below its
// usual value, the sharpness well below the reference's, a neighbour or a
// mirror matching better, many blocks flat) runs the deep check on that
// same frame, so that a tampered view fails its first frame. The deep
// check also runs every Options.DeepEvery-th frame, and on every frame
// until one passes (at start, and after a mismatch until the view is
// back):
//
//   - obstruction: most blocks that are textured in the reference went flat;
//   - defocus: the ratio of Laplacian to gradient energy (free of
//     brightness) fell well below the reference's;
//   - shift, scale and rotation: after an alarm, the global shift by phase
//     correlation of the distinctive blocks (Hanning window, zero mean,
//     masked regions and repeating texture zero); then the displacement of
//     12 tiles by phase correlation and a least-squares fit of a
//     similarity transform to the largest set of them that agree;
//   - scene: the score with that transform undone (or with the last one,
//     when its distinctive blocks match better: people in front of most
//     tiles) is low, or
//     lower than a mirror's (a flip, another place).
//
// Limits derive from the view: a shift that moves a mask edge by more than
// Options.MaxShift of the frame width (default 1 %) is a mismatch; the
// rotation and scale limits are those that move the farthest mask vertex
// (the frame corner when the view has no masks) from the centre by as
// much. With day and night references for a view, a monochrome frame (U,
// V ≈ 128: an IR picture) is checked against the night ones; the frame
// passes when one reference of its kind matches.
//
// Cost (BenchmarkCheck1080p, and ViewCheckVsDecode in cmd/velobench): the
// per-frame path is the downscale, three small passes at 160×90 and the
// probes (about 0.34 CPU-ms per 1080p frame in all); the deep check costs
// about four frames' worth.
package viewcheck
