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

// CutProxy forwards TCP to target and can cut every connection at once,
// or freeze them: while frozen nothing is forwarded either way and every
// connection stays open (a peer that hangs without closing).
type CutProxy struct {
	Ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	thawed chan struct{} // closed while not frozen
}

// NewCutProxy listens on a free loopback port and forwards to target.
func NewCutProxy(t testing.TB, target string) *CutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{Ln: ln, target: target, thawed: make(chan struct{})}
	close(p.thawed)
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
			go func() { p.copyClose(u, c) }()
			go func() { p.copyClose(c, u) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.Thaw(); p.Cut() })
	return p
}

func (p *CutProxy) copyClose(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		thawed := p.thawed
		p.mu.Unlock()
		<-thawed // frozen: hold the bytes until Thaw
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

// Freeze stops forwarding on every connection, present and future, without
// closing any; Thaw resumes.
func (p *CutProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default:
	}
}

// Thaw resumes forwarding after Freeze.
func (p *CutProxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}
