package relay

import (
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A listener that fails for good (its socket shut down underneath it) is
// reported once, as stopped, and not retried in a loop.
func TestListenerStoppedForGoodIsReported(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := New(addr, "velo", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notes []string
	s.OnListenerError = func(listen string, err error, stopped bool) {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, fmt.Sprintf("%s %v %v", listen, stopped, err))
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := s.gate.lns[0].ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || notes[0][:len(addr)+5] != addr+" true" {
		t.Fatalf("reports: %q, want one stopped report for %s", notes, addr)
	}
}
