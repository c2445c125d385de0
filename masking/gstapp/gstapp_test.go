package gstapp_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/masking/gstapp"
)

// A frame whose GStreamer rows are padded (322 wide: strides 324 and 164)
// arrives packed, every byte the pattern's: white is Y 235, U = V 128.
func TestPullPacksPaddedFrames(t *testing.T) {
	p, err := gstapp.Launch("videotestsrc num-buffers=3 pattern=white ! video/x-raw,format=I420,width=322,height=240,framerate=10/1 ! appsink name=velo sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Play(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		info, err := p.Pull(5 * time.Second)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if info.W != 322 || info.H != 240 || info.FPS() != 10 || info.PackedI420 != 322*240*3/2 {
			t.Fatalf("frame %d: %+v", i, info)
		}
		buf := make([]byte, info.PackedI420)
		if err := p.Take(buf); err != nil {
			t.Fatal(err)
		}
		y, c := buf[:322*240], buf[322*240:]
		if bytes.Count(y, []byte{235}) != len(y) || bytes.Count(c, []byte{128}) != len(c) {
			t.Fatalf("frame %d: packed planes are not the pattern's (first Y %v, first chroma %v)", i, y[:8], c[:8])
		}
	}
	if _, err := p.Pull(5 * time.Second); !errors.Is(err, gstapp.ErrEOS) {
		t.Fatalf("after the last frame: %v, want ErrEOS", err)
	}
}

// Frames pushed into an appsrc reach the sink byte for byte, timestamps
// and all, and Finish returns once they are written.
func TestPushReachesTheSink(t *testing.T) {
	out := filepath.Join(t.TempDir(), "raw")
	p, err := gstapp.Launch("appsrc name=velo format=time block=true max-bytes=230400 ! filesink location=" + out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Setup(320, 240, 10); err != nil {
		t.Fatal(err)
	}
	if err := p.Play(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; i < 8; i++ {
		f := make([]byte, 320*240*3/2)
		for j := range f {
			f[j] = byte(i*7 + j*13)
		}
		want = append(want, f...)
		if err := p.Push(f, time.Duration(i)*100*time.Millisecond, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Finish(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("sink got %d bytes, want the %d pushed", len(got), len(want))
	}
	if err := p.Push(make([]byte, 100), 0, 0); err == nil {
		t.Fatal("a frame of the wrong size was pushed")
	}
}

// A pipeline that fails posts its error on the bus: Pull returns it within
// a slice, not at its timeout; a pipeline that sends nothing times out at
// the bound.
func TestPullBounded(t *testing.T) {
	p, err := gstapp.Launch("filesrc location=/nonexistent/velo.h264 ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=velo")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Play()
	if err == nil {
		t0 := time.Now()
		_, err = p.Pull(20 * time.Second)
		if time.Since(t0) > 5*time.Second {
			t.Fatalf("error surfaced after %v", time.Since(t0))
		}
	}
	p.Close()
	if err == nil || errors.Is(err, gstapp.ErrTimeout) || strings.Contains(err.Error(), "nonexistent") == false && !strings.Contains(err.Error(), "filesrc") {
		t.Fatalf("missing file: %v, want the bus error", err)
	}
	t.Logf("missing file: %v", err)

	q, err := gstapp.Launch("appsrc name=feed ! video/x-raw,format=I420,width=64,height=64 ! appsink name=velo")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Play(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := q.Pull(600 * time.Millisecond); !errors.Is(err, gstapp.ErrTimeout) {
		t.Fatalf("silent pipeline: %v, want ErrTimeout", err)
	}
	if d := time.Since(t0); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timeout of 600ms took %v", d)
	}
}

// Every pipeline made is freed by Close, and a pipeline without its app
// element is refused.
func TestNoPipelineLeft(t *testing.T) {
	base := gstapp.Live()
	if _, err := gstapp.Launch("videotestsrc ! fakesink"); err == nil || !strings.Contains(err.Error(), "velo") {
		t.Fatalf("no app element: %v", err)
	}
	if _, err := gstapp.Launch("nosuchelement ! appsink name=velo"); err == nil {
		t.Fatal("unknown element accepted")
	}
	p, err := gstapp.Launch("videotestsrc ! appsink name=velo")
	if err != nil {
		t.Fatal(err)
	}
	if gstapp.Live() != base+1 {
		t.Fatalf("live %d, want %d", gstapp.Live(), base+1)
	}
	p.Close()
	p.Close()
	if gstapp.Live() != base {
		t.Fatalf("live %d after Close, want %d", gstapp.Live(), base)
	}
}
