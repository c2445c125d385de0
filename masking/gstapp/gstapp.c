#include "gstapp.h"

#include <string.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

struct velo_pipe {
	GstElement *pipe;
	GstElement *app; // the appsink or appsrc named "velo"
	GstBus *bus;
	// Capture: the sample pulled and not yet taken, and its caps' layout.
	GstSample *sample;
	GstCaps *caps;
	GstVideoInfo info;
	// Encode: I420 buffers recycled once the encoder lets them go.
	GstBufferPool *pool;
	GstVideoInfo src_info;
};

static gint live;

static void set_err(char **err, const char *msg) {
	if (err && !*err) {
		*err = g_strdup(msg);
	}
}

int velo_gst_init(char **err) {
	GError *e = NULL;
	if (!gst_init_check(NULL, NULL, &e)) {
		set_err(err, e ? e->message : "gst_init failed");
		g_clear_error(&e);
		return -1;
	}
	return 0;
}

int velo_live_pipelines(void) { return g_atomic_int_get(&live); }

void velo_free(void *p) { g_free(p); }

velo_pipe *velo_launch(const char *desc, char **err) {
	GError *e = NULL;
	GstElement *p = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &e);
	if (!p) {
		set_err(err, e ? e->message : "pipeline did not parse");
		g_clear_error(&e);
		return NULL;
	}
	g_clear_error(&e);
	GstElement *app = GST_IS_BIN(p) ? gst_bin_get_by_name(GST_BIN(p), "velo") : NULL;
	if (!app) {
		gst_object_unref(p);
		set_err(err, "pipeline has no element named velo");
		return NULL;
	}
	velo_pipe *vp = g_new0(velo_pipe, 1);
	vp->pipe = p;
	vp->app = app;
	vp->bus = gst_element_get_bus(p);
	g_atomic_int_inc(&live);
	return vp;
}

int velo_set_string(velo_pipe *vp, const char *name, const char *prop, const char *value, char **err) {
	GstElement *el = gst_bin_get_by_name(GST_BIN(vp->pipe), name);
	if (!el) {
		set_err(err, "no such element");
		return -1;
	}
	if (!g_object_class_find_property(G_OBJECT_GET_CLASS(el), prop)) {
		gst_object_unref(el);
		set_err(err, "no such property");
		return -1;
	}
	g_object_set(el, prop, value, NULL);
	gst_object_unref(el);
	return 0;
}

// pop_error takes the first error message on the bus, if any: its message
// only (the debug string may name URLs and file paths).
static int pop_error(velo_pipe *vp, char **err) {
	GstMessage *m = gst_bus_pop_filtered(vp->bus, GST_MESSAGE_ERROR);
	if (!m) {
		return 0;
	}
	GError *e = NULL;
	gst_message_parse_error(m, &e, NULL);
	char *msg = g_strdup_printf("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), e ? e->message : "error");
	set_err(err, msg);
	g_free(msg);
	g_clear_error(&e);
	gst_message_unref(m);
	return 1;
}

int velo_bus_error(velo_pipe *vp, char **err) { return pop_error(vp, err); }

int velo_play(velo_pipe *vp, char **err) {
	if (gst_element_set_state(vp->pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
		if (!pop_error(vp, err)) {
			set_err(err, "pipeline did not start");
		}
		return -1;
	}
	return 0;
}

void velo_close(velo_pipe *vp) {
	if (!vp) {
		return;
	}
	gst_element_set_state(vp->pipe, GST_STATE_NULL);
	if (vp->sample) {
		gst_sample_unref(vp->sample);
	}
	if (vp->caps) {
		gst_caps_unref(vp->caps);
	}
	if (vp->pool) {
		gst_buffer_pool_set_active(vp->pool, FALSE);
		gst_object_unref(vp->pool);
	}
	gst_object_unref(vp->bus);
	gst_object_unref(vp->app);
	gst_object_unref(vp->pipe);
	g_free(vp);
	g_atomic_int_add(&live, -1);
}

// The wait for a sample is cut in slices so that an error on the bus (a
// refused connection, a decoder that gave up) ends it within a slice: the
// appsink itself is never told. A slice is longer than a frame interval,
// so a stream that flows never wakes up for nothing.
#define SLICE_NS (250 * GST_MSECOND)

int velo_pull(velo_pipe *vp, int64_t timeout_ns, int *w, int *h, int *fps_n, int *fps_d, char **err) {
	velo_drop(vp);
	GstAppSink *sink = GST_APP_SINK(vp->app);
	for (;;) {
		int64_t slice = timeout_ns < SLICE_NS ? timeout_ns : SLICE_NS;
		GstSample *s = gst_app_sink_try_pull_sample(sink, slice);
		if (s) {
			vp->sample = s;
			break;
		}
		if (pop_error(vp, err)) {
			return -2;
		}
		if (gst_app_sink_is_eos(sink)) {
			return -1;
		}
		timeout_ns -= slice;
		if (timeout_ns <= 0) {
			return 0;
		}
	}
	GstCaps *caps = gst_sample_get_caps(vp->sample);
	if (!caps || !gst_sample_get_buffer(vp->sample)) {
		set_err(err, "sample without caps or buffer");
		return -2;
	}
	if (caps != vp->caps) {
		if (!gst_video_info_from_caps(&vp->info, caps) || GST_VIDEO_INFO_FORMAT(&vp->info) != GST_VIDEO_FORMAT_I420) {
			set_err(err, "caps are not raw I420 video");
			return -2;
		}
		gst_caps_replace(&vp->caps, caps);
	}
	*w = GST_VIDEO_INFO_WIDTH(&vp->info);
	*h = GST_VIDEO_INFO_HEIGHT(&vp->info);
	*fps_n = GST_VIDEO_INFO_FPS_N(&vp->info);
	*fps_d = GST_VIDEO_INFO_FPS_D(&vp->info);
	return 1;
}

void velo_drop(velo_pipe *vp) {
	if (vp->sample) {
		gst_sample_unref(vp->sample);
		vp->sample = NULL;
	}
}

// copy_planes copies the three planes of an I420 frame between a packed
// buffer (strides w and w/2) and a mapped GstVideoFrame: one memcpy per
// plane when the strides agree, else one per row.
static void copy_planes(GstVideoFrame *f, uint8_t *packed, int to_frame) {
	int w = GST_VIDEO_FRAME_WIDTH(f), h = GST_VIDEO_FRAME_HEIGHT(f);
	for (int p = 0; p < 3; p++) {
		int pw = p ? w / 2 : w, ph = p ? h / 2 : h;
		int stride = GST_VIDEO_FRAME_PLANE_STRIDE(f, p);
		uint8_t *d = GST_VIDEO_FRAME_PLANE_DATA(f, p);
		if (stride == pw) {
			if (to_frame) {
				memcpy(d, packed, (size_t)pw * ph);
			} else {
				memcpy(packed, d, (size_t)pw * ph);
			}
		} else {
			for (int r = 0; r < ph; r++) {
				if (to_frame) {
					memcpy(d + (size_t)r * stride, packed + (size_t)r * pw, pw);
				} else {
					memcpy(packed + (size_t)r * pw, d + (size_t)r * stride, pw);
				}
			}
		}
		packed += (size_t)pw * ph;
	}
}

int velo_take(velo_pipe *vp, uint8_t *dst, size_t n) {
	if (!vp->sample) {
		return -1;
	}
	int w = GST_VIDEO_INFO_WIDTH(&vp->info), h = GST_VIDEO_INFO_HEIGHT(&vp->info);
	if (w % 2 || h % 2 || n != (size_t)w * h * 3 / 2) {
		velo_drop(vp);
		return -1;
	}
	GstVideoFrame f;
	if (!gst_video_frame_map(&f, &vp->info, gst_sample_get_buffer(vp->sample), GST_MAP_READ)) {
		velo_drop(vp);
		return -1;
	}
	copy_planes(&f, dst, 0);
	gst_video_frame_unmap(&f);
	velo_drop(vp);
	return 0;
}

int velo_src_setup(velo_pipe *vp, int w, int h, int fps, char **err) {
	GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "I420", "width", G_TYPE_INT, w,
	                                    "height", G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, fps, 1, NULL);
	gst_video_info_from_caps(&vp->src_info, caps);
	gst_app_src_set_caps(GST_APP_SRC(vp->app), caps);
	// Three buffers: one queued in the appsrc, one in the encoder, one
	// being filled; a fourth is allocated only while the encoder holds
	// more (then freed, not kept).
	vp->pool = gst_buffer_pool_new();
	GstStructure *cfg = gst_buffer_pool_get_config(vp->pool);
	gst_buffer_pool_config_set_params(cfg, caps, GST_VIDEO_INFO_SIZE(&vp->src_info), 3, 3);
	gst_caps_unref(caps);
	if (!gst_buffer_pool_set_config(vp->pool, cfg) || !gst_buffer_pool_set_active(vp->pool, TRUE)) {
		set_err(err, "buffer pool did not start");
		return -1;
	}
	return 0;
}

int velo_push(velo_pipe *vp, const uint8_t *src, size_t n, uint64_t pts, uint64_t dur, char **err) {
	GstVideoInfo *info = &vp->src_info;
	if (n != (size_t)GST_VIDEO_INFO_WIDTH(info) * GST_VIDEO_INFO_HEIGHT(info) * 3 / 2) {
		set_err(err, "frame size does not match the caps");
		return -1;
	}
	GstBuffer *b = NULL;
	GstBufferPoolAcquireParams params = {.flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT};
	if (gst_buffer_pool_acquire_buffer(vp->pool, &b, &params) != GST_FLOW_OK) {
		b = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(info), NULL);
	}
	GstVideoFrame f;
	if (!b || !gst_video_frame_map(&f, info, b, GST_MAP_WRITE)) {
		if (b) {
			gst_buffer_unref(b);
		}
		set_err(err, "buffer did not map");
		return -1;
	}
	copy_planes(&f, (uint8_t *)src, 1);
	gst_video_frame_unmap(&f);
	GST_BUFFER_PTS(b) = pts;
	GST_BUFFER_DURATION(b) = dur;
	GstFlowReturn r = gst_app_src_push_buffer(GST_APP_SRC(vp->app), b); // takes b
	if (r != GST_FLOW_OK) {
		if (!pop_error(vp, err)) {
			set_err(err, gst_flow_get_name(r));
		}
		return -1;
	}
	return 0;
}

int velo_finish(velo_pipe *vp, int64_t timeout_ns, char **err) {
	gst_app_src_end_of_stream(GST_APP_SRC(vp->app));
	GstMessage *m = gst_bus_timed_pop_filtered(vp->bus, timeout_ns, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
	if (!m) {
		return 0;
	}
	int rc = 1;
	if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
		GError *e = NULL;
		gst_message_parse_error(m, &e, NULL);
		set_err(err, e ? e->message : "error");
		g_clear_error(&e);
		rc = -2;
	}
	gst_message_unref(m);
	return rc;
}
