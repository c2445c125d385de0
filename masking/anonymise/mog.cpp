#include <opencv2/core.hpp>
#include <opencv2/video/background_segm.hpp>
#include "mog.h"

struct veloMOG {
	cv::Ptr<cv::BackgroundSubtractorMOG2> p;
};

VeloMOG velo_mog_new(int history, double var_threshold) {
	veloMOG *m = new veloMOG;
	m->p = cv::createBackgroundSubtractorMOG2(history, var_threshold, false);
	return m;
}

int velo_mog_apply(VeloMOG m, const unsigned char *src, int w, int h, unsigned char *fg, double rate) {
	try {
		cv::Mat in(h, w, CV_8UC1, const_cast<unsigned char *>(src));
		cv::Mat out(h, w, CV_8UC1, fg);
		static_cast<veloMOG *>(m)->p->apply(in, out, rate);
		// apply must have written into fg, not into a new buffer.
		return out.data == fg && out.rows == h && out.cols == w ? 0 : -1;
	} catch (...) {
		return -1;
	}
}

void velo_mog_close(VeloMOG m) { delete static_cast<veloMOG *>(m); }
