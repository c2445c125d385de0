// The C side of package gstapp: a GStreamer pipeline whose Go end is an
// appsink (decoded I420 frames out) or an appsrc (I420 frames in). Kept
// small: every call is bounded (timeouts in nanoseconds) and returns an
// error string the caller frees with velo_free.
#ifndef VELO_GSTAPP_H
#define VELO_GSTAPP_H

#include <stdint.h>
#include <stddef.h>

typedef struct velo_pipe velo_pipe;

int velo_gst_init(char **err);
int velo_live_pipelines(void);
void velo_free(void *p);

// velo_launch parses desc (gst-launch syntax) whose app element is named
// "velo"; the pipeline is left in NULL state.
velo_pipe *velo_launch(const char *desc, char **err);
// velo_set_string sets a string property of the element named name.
int velo_set_string(velo_pipe *vp, const char *name, const char *prop, const char *value, char **err);
// velo_play sets the pipeline PLAYING (asynchronously for live sources).
int velo_play(velo_pipe *vp, char **err);
// velo_close stops the pipeline (NULL state) and frees it.
void velo_close(velo_pipe *vp);

// Capture (appsink). velo_pull waits up to timeout_ns for a sample:
// 1 got one (w, h, fps of its caps), 0 timeout, -1 end of stream, -2 error.
int velo_pull(velo_pipe *vp, int64_t timeout_ns, int *w, int *h, int *fps_n, int *fps_d, char **err);
// velo_take copies the pulled sample into dst (packed I420, n bytes) and
// releases it; -1 when it does not fit or cannot be mapped.
int velo_take(velo_pipe *vp, uint8_t *dst, size_t n);
// velo_drop releases a pulled sample without copying it.
void velo_drop(velo_pipe *vp);

// Encode (appsrc). velo_src_setup sizes the buffer pool for w×h I420.
int velo_src_setup(velo_pipe *vp, int w, int h, int fps, char **err);
// velo_push copies src (packed I420) into a pooled buffer and pushes it
// with its timestamp.
int velo_push(velo_pipe *vp, const uint8_t *src, size_t n, uint64_t pts, uint64_t dur, char **err);
// velo_finish sends end of stream and waits up to timeout_ns for it to
// reach the sink (or an error): 1 done, 0 timeout, -2 error.
int velo_finish(velo_pipe *vp, int64_t timeout_ns, char **err);
// velo_bus_error pops a pending error (1, with err) without waiting.
int velo_bus_error(velo_pipe *vp, char **err);

#endif
