#include <opencv2/core.hpp>
#include "cvthreads.h"

void velobench_set_cv_threads(int n) { cv::setNumThreads(n); }
int velobench_get_cv_threads(void) { return cv::getNumThreads(); }
