// Package viewcheck verifies from the pixels that a camera shows its
// approved view: it provides masking.ViewCheck on OpenCV (gocv).
//
// A Reference is an approved view's appearance: the frame's luma downscaled
// to RefWidth pixels wide, with the view's masked regions excluded and
// filled, so that no masked pixel is ever stored. It is saved as one
// self-describing file (a PGM with a JSON header, see Save) whose SHA256
// goes into the audit log and the dossier.
//
// A Verifier compares each frame with the references of its view. Every
// frame is downscaled once (INTER_AREA over the Y plane, no copy) and
// turned into a structure image: the gradient magnitude of the log luma.
// The log makes brightness, exposure and gamma changes and shadows
// (multiplicative) vanish from the gradients but for a shadow's edge; the
// masked regions are excluded. On this image, every frame:
//
//   - global shift: phase correlation against the reference, Hanning
//     windowed, zero mean;
//   - score: the normalised correlation of the structure images, the
//     frame's shifted back.
//
// Every Options.DeepEvery-th frame, and at once when the shift nears its
// limit or the score drops (an alarm), a deep check adds:
//
//   - obstruction: most blocks that are textured in the reference are flat;
//   - defocus: the ratio of Laplacian to gradient energy (brightness free)
//     falls well below the reference's;
//   - shift, scale and rotation: phase correlation of 12 tiles, a robust
//     least-squares fit of a similarity transform to their displacements;
//   - scene: the score after that transform is undone is low (a flip, a
//     different place).
//
// Limits derive from the view: a shift that moves a mask edge by more than
// Options.MaxShift of the frame width (default 1 %) is a mismatch, and the
// rotation and scale limits are those that move the farthest mask vertex
// (or the frame corner when the view has no masks) from the centre by as
// much. With several references for a view (day and night), a monochrome
// frame (U, V ≈ 128, an IR picture) is checked against the night ones when
// there are any; the frame passes when one reference matches.
package viewcheck
