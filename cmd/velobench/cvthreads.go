package main

// gocv v0.32.0 has no SetNumThreads: per-operation figures keep OpenCV on
// one thread, so a kernel is compared with a kernel and not with a thread
// pool.

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "cvthreads.h"
*/
import "C"

// setCVThreads sets OpenCV's worker threads and returns the number now used.
func setCVThreads(n int) int {
	C.velobench_set_cv_threads(C.int(n))
	return int(C.velobench_get_cv_threads())
}
