package masking

/*
#include <malloc.h>

static int velo_bound_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
*/
import "C"

import "os"

// MallocArenas is how many glibc malloc arenas the process may use. The
// video path frees its frame buffers (3 MB at 1080p) from GStreamer's
// streaming threads and OpenCV's capture threads; glibc gives each such
// thread an arena of its own (up to 8 per core) and keeps what was freed
// there, so RSS grew by ~100 MB per 1080p stream and kept creeping. With
// two arenas, measured with `go run ./cmd/velobench -streams-only`: ~77 MB
// per stream (docs/masking.md, "Memory"). MALLOC_ARENA_MAX in the
// environment (read by glibc at start) is left to decide when set.
const MallocArenas = 2

func init() {
	// Before any capture or encoder thread exists: arenas are made on a
	// thread's first allocation under contention.
	if os.Getenv("MALLOC_ARENA_MAX") == "" {
		C.velo_bound_arenas(C.int(MallocArenas))
	}
}
