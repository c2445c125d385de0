// Package cameramask pushes a fixed view's privacy masks to the camera
// itself (ONVIF Media2 masks) as defence in depth, and reads them back to
// report drift. Velo's own masks stay the floor: a camera mask never
// replaces one, and nothing here changes what Velo masks.
//
// Sync makes the camera's masks on the profile's video source
// configuration equal to the view's masks; Check reads them back and
// compares. Both return a Report: what the camera holds as expected
// (Pushed), what it cannot take (Unsupported, never pushed and never
// silently dropped), and the drift found — Missing, Changed and Extra
// masks — which the agent turns into camera_masks_missing and
// camera_masks_changed. The agent runs Check at connect and every
// CheckInterval.
//
// Ownership. A tr2:Mask has no name or description, and the device
// assigns its token (CreateMask returns it), so no tag can mark a mask as
// Velo's on the camera; a list of tokens kept by the gateway would be
// wrong after a factory reset, a second gateway or a token reused by the
// firmware. Velo therefore owns every mask of the video source
// configuration it streams (on a SourceMask camera, of the video source
// behind it, shared by its configurations): Sync deletes masks that are not
// the view's (listed in Report.Removed, for the audit log), and Check
// reports any such mask as Extra — a mask added in the camera's menu may
// hide the very thing the approved view must show. The camera's mask list
// thus mirrors the approved configuration (ER-4.7), and a view approved
// without masks leaves the camera without masks.
//
// Presets. A Media2 mask is a polygon in the video source's coordinates;
// ONVIF ties it to a video source configuration, never to a PTZ preset or
// position, and the simulator does the same. One mask set cannot follow a
// camera between presets, and the union of the presets' masks would hide
// parts of every approved view. So camera-side masks are used only for a
// fixed view (a camera configured without presets, including a PTZ camera
// locked to one position); for a camera with presets the Report says
// CameraUnsupported and the camera's masks are left untouched.
//
// Conversion. Polygons go from Velo's normalised [0,1] y-down image
// coordinates to ONVIF's centred y-up −1..1 space (onvif.ImagePoint); a
// "full" mask becomes a rectangle over the whole frame. GetMaskOptions
// sets the limits: a view mask beyond MaxMasks, with more than MaxPoints
// vertices, or not an axis-aligned rectangle (filling 99 % of its bounding
// rectangle) on a RectangleOnly camera is Unsupported: the bounding
// rectangle would hide more than was approved.
// Styles: fill and full → Color; pixelate → Pixelated and blur → Blurred
// where the camera offers them, else Color (stronger, never weaker; a fill
// is never pushed as a weaker style). Colours are sent in YCbCr, snapped to
// the nearest of the camera's ColorList when it has one (one colour for
// all when SingleColorOnly); Expected.Note records every such adaptation.
//
// Comparison. A camera mask equals an expected one when its vertices are
// within 1 % of the frame (the same bound the view check uses for a mask
// edge) in some cyclic order and direction, and type, colour (for Color
// masks, within one code value) and Enabled agree. An expected mask without
// an equal one is paired with the unclaimed camera mask whose bounding box
// overlaps it most (Changed); the rest are Missing and Extra.
//
// The Device must be connected (onvif.Client.Connect), so that it knows the
// camera's Media2 address; errors name the camera and the operation.
package cameramask
