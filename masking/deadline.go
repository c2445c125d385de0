package masking

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// A call into OpenCV (open, read, close of a capture) cannot be
// interrupted: GStreamer can wait forever inside it for a camera whose RTSP
// server answers and then sends nothing. So every such call runs on a
// goroutine of its own and the caller waits for it with a deadline. Past
// the deadline the caller abandons the call and goes on (reconnects); the
// capture is closed when the call returns, if it ever does. Abandoned calls
// hold a thread, a socket and GStreamer's threads each, so Stuck bounds
// them per camera and in total.

// Default bounds of Stuck.
const (
	DefaultMaxStuckPerCamera = 3
	DefaultMaxStuckTotal     = 8
)

// ErrTooManyStuck is returned instead of opening a capture while the
// camera, or the process, holds as many abandoned calls as allowed.
var ErrTooManyStuck = errors.New("too many hung captures not yet returned")

// Stuck counts abandoned capture calls that have not returned yet, per
// camera. One value serves a whole process (the agent makes one).
type Stuck struct {
	maxPerCamera, maxTotal int

	mu        sync.Mutex
	perCamera map[string]int
	total     int
}

// NewStuck bounds abandoned calls to maxPerCamera per camera and maxTotal
// in all (defaults when ≤ 0).
func NewStuck(maxPerCamera, maxTotal int) *Stuck {
	if maxPerCamera <= 0 {
		maxPerCamera = DefaultMaxStuckPerCamera
	}
	if maxTotal <= 0 {
		maxTotal = DefaultMaxStuckTotal
	}
	return &Stuck{maxPerCamera: maxPerCamera, maxTotal: maxTotal, perCamera: map[string]int{}}
}

// admit refuses a new capture for camera while its bound or the total is
// reached: another open would most likely hang too, and pile up.
func (s *Stuck) admit(camera string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.perCamera[camera]; n >= s.maxPerCamera {
		return fmt.Errorf("%w (%d for this camera)", ErrTooManyStuck, n)
	}
	if s.total >= s.maxTotal {
		return fmt.Errorf("%w (%d in all)", ErrTooManyStuck, s.total)
	}
	return nil
}

func (s *Stuck) add(camera string, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perCamera[camera] += d
	s.total += d
	if s.perCamera[camera] == 0 {
		delete(s.perCamera, camera)
	}
}

// Count is how many of camera's calls are abandoned and not yet returned.
func (s *Stuck) Count(camera string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perCamera[camera]
}

// Total is how many abandoned calls have not returned, all cameras.
func (s *Stuck) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Full reports, as an error naming the cameras, when a camera or the
// process has reached its bound: the camera cannot capture again until
// its calls return, which may be never, so only a restart frees it.
func (s *Stuck) Full() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var full []string
	for cam, n := range s.perCamera {
		if n >= s.maxPerCamera {
			full = append(full, fmt.Sprintf("camera %q: %d", cam, n))
		}
	}
	sort.Strings(full)
	if len(full) == 0 && s.total < s.maxTotal {
		return nil
	}
	return fmt.Errorf("masking: hung captures: %d in all (bound %d per camera, %d in all) %s", s.total, s.maxPerCamera, s.maxTotal, strings.Join(full, ", "))
}

// abandonedError is what an abandoned call returns: hung past its
// deadline d, or (d = 0) given up because its caller is stopping.
type abandonedError struct {
	what string
	d    time.Duration
}

func (e abandonedError) Error() string {
	if e.d == 0 {
		return e.what + " abandoned: stopping"
	}
	return fmt.Sprintf("%s hung for %v: abandoned", e.what, e.d)
}

// IsHung reports whether err is a capture call abandoned at its deadline.
func IsHung(err error) bool {
	var e abandonedError
	return errors.As(err, &e) && e.d > 0
}

// isAbandoned reports whether err is any abandoned call.
func isAbandoned(err error) bool { return errors.As(err, new(abandonedError)) }

// captureThread owns one capture: every call into it runs on the thread's
// goroutine, one at a time, so a call past its deadline can be abandoned.
type captureThread struct {
	camera string
	stuck  *Stuck
	calls  chan func()

	mu        sync.Mutex
	abandoned bool
	release   func() // closes the capture; run once, by the goroutine
}

func newCaptureThread(camera string, stuck *Stuck) *captureThread {
	t := &captureThread{camera: camera, stuck: stuck, calls: make(chan func())}
	go t.loop()
	return t
}

// loop runs calls until the thread is stopped or abandoned, then closes
// the capture.
func (t *captureThread) loop() {
	for call := range t.calls {
		call()
		t.mu.Lock()
		gone := t.abandoned
		t.mu.Unlock()
		if gone {
			t.closeCapture()
			t.stuck.add(t.camera, -1)
			return
		}
	}
	t.closeCapture()
}

func (t *captureThread) closeCapture() {
	if t.release != nil {
		t.release()
		t.release = nil
	}
}

// call runs blocking on the thread, then deliver unless the caller gave up
// meanwhile: deliver is where a result reaches the caller's memory, so an
// abandoned call never writes there. It waits at most d, or until stop is
// closed; then the thread is abandoned and must not be used again.
func (t *captureThread) call(what string, d time.Duration, stop <-chan struct{}, blocking func(), deliver func() error) error {
	done := make(chan error, 1)
	t.calls <- func() {
		blocking()
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.abandoned {
			done <- deliver()
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	var why error
	select {
	case err := <-done:
		return err
	case <-timer.C:
		why = abandonedError{what, d}
	case <-stop:
		why = abandonedError{what, 0}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case err := <-done: // delivered while the deadline fired
		return err
	default:
	}
	t.abandoned = true
	t.stuck.add(t.camera, 1)
	close(t.calls) // the goroutine leaves after the call returns
	return why
}

// gone reports whether a call was abandoned (the thread then closes the
// capture itself and takes no more calls).
func (t *captureThread) gone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.abandoned
}

// stop ends the thread after its current call: the capture is closed,
// waiting at most d for it (then it is abandoned like a hung call).
func (t *captureThread) stop(d time.Duration) error {
	return t.call("close", d, nil, func() { t.closeCapture() }, func() error {
		close(t.calls)
		return nil
	})
}
