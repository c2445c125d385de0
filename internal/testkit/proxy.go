package testkit

import (
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// OpenFDs counts the process's open file descriptors.
func OpenFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// Settle waits (up to 10 s) until goroutines and fds are back within tol of base.
func Settle(base, baseFD, tol int) (int, int) {
	var g, f int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		runtime.GC()
		g, f = runtime.NumGoroutine(), OpenFDs()
		if g <= base+tol && f <= baseFD+tol {
			break
		}
	}
	return g, f
}

// CutProxy forwards TCP to target and can cut every connection at once.
type CutProxy struct {
	Ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

// NewCutProxy listens on a free loopback port and forwards to target.
func NewCutProxy(t testing.TB, target string) *CutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{Ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { copyClose(u, c) }()
			go func() { copyClose(c, u) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

func copyClose(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// Cut closes every forwarded connection.
func (p *CutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
