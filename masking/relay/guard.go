package relay

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits bound what peers that have not logged in can hold. Zero fields
// take the defaults below.
type Limits struct {
	// MaxConns caps the connections from other hosts, all together; the
	// gateway itself (127.0.0.1, ::1: the recorder, local players) has a
	// pool of the same size of its own, so a flood from the network
	// cannot keep the recorder out.
	MaxConns int
	// MaxConnsPerIP caps the connections from one address of another host.
	MaxConnsPerIP int
	// LoginTimeout closes a connection that has not logged in by then
	// (slow or half-sent requests included).
	LoginTimeout time.Duration
	// NonceLifetime is how long a digest nonce is accepted after it was
	// issued; then the player gets 401 with stale=true and answers the
	// new nonce without asking its user again.
	NonceLifetime time.Duration
	// MaxPause is the longest pause a source earns by failing to log in
	// (the pauses double from a quarter of a second up to it).
	MaxPause time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConns      = 64
	DefaultMaxConnsPerIP = 8
	DefaultLoginTimeout  = 10 * time.Second
	DefaultNonceLifetime = time.Minute
	DefaultMaxPause      = 2 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerIP <= 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if l.LoginTimeout <= 0 {
		l.LoginTimeout = DefaultLoginTimeout
	}
	if l.NonceLifetime <= 0 {
		l.NonceLifetime = DefaultNonceLifetime
	}
	if l.MaxPause <= 0 {
		l.MaxPause = DefaultMaxPause
	}
	return l
}

// Accept backoff after a temporary error (out of descriptors, memory).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 500 * time.Millisecond
)

// gateListener merges the relay's listeners (plaintext RTSP, RTSPS) into
// the one net.Listener gortsplib serves, and admits connections: caps,
// login deadline, TLS. gortsplib ends the whole server on the first
// Accept error, so temporary errors are retried here and never reach it.
type gateListener struct {
	s      *Server
	limits Limits
	lns    []gateLn
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	pools   [2]int         // open connections: other hosts, this host
	perIP   map[string]int // open connections per address of another host
	running int            // accept loops still running
}

type gateLn struct {
	ln  net.Listener
	tls *tls.Config
}

func (g *gateListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

func (g *gateListener) Close() error {
	g.once.Do(func() {
		close(g.done)
		for _, l := range g.lns {
			l.ln.Close()
		}
	})
	return nil
}

func (g *gateListener) Addr() net.Addr { return g.lns[0].ln.Addr() }

func (g *gateListener) closed() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

func (g *gateListener) start() {
	g.running = len(g.lns)
	for _, l := range g.lns {
		go g.acceptLoop(l)
	}
}

// acceptLoop accepts on one listener until it is closed or fails for
// good; temporary errors are retried with backoff and reported once per
// streak.
func (g *gateListener) acceptLoop(l gateLn) {
	addr := l.ln.Addr().String()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if g.closed() {
				return
			}
			if !temporary(err) {
				g.stopped(addr, err)
				return
			}
			if delay == 0 {
				g.s.listenerError(addr, err, false)
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			select {
			case <-time.After(delay):
			case <-g.done:
				return
			}
			continue
		}
		delay = 0
		gc := g.admit(c, l.tls)
		if gc == nil {
			continue
		}
		select {
		case g.conns <- gc:
		case <-g.done:
			gc.Close()
			return
		}
	}
}

// stopped reports a listener that failed for good; when none is left,
// Accept fails too (gortsplib then stops).
func (g *gateListener) stopped(addr string, err error) {
	g.s.listenerError(addr, err, true)
	g.mu.Lock()
	g.running--
	last := g.running == 0
	g.mu.Unlock()
	if last {
		g.Close()
	}
}

// temporary: errors after which accepting again can succeed.
func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED,
		syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM, syscall.EAGAIN, syscall.EINTR, syscall.ETIMEDOUT} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// thisHost: the gateway's own loopback addresses (other 127/8 addresses
// count as other hosts).
func thisHost(ip net.IP) bool {
	return ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback)
}

// admit counts c against its pool and address, or closes it when full;
// an admitted connection is closed at the login deadline unless it logs
// in before.
func (g *gateListener) admit(c net.Conn, tlsConf *tls.Config) net.Conn {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		c.Close()
		return nil
	}
	pool, key := 0, ta.IP.String()
	if thisHost(ta.IP) {
		pool = 1
	}
	g.mu.Lock()
	full := g.pools[pool] >= g.limits.MaxConns || (pool == 0 && g.perIP[key] >= g.limits.MaxConnsPerIP)
	if !full {
		g.pools[pool]++
		if pool == 0 {
			g.perIP[key]++
		}
	}
	g.mu.Unlock()
	if full {
		g.s.refused.Add(1)
		c.Close()
		return nil
	}
	gc := &guardedConn{Conn: c, g: g, ip: key, pool: pool, closed: make(chan struct{})}
	gc.mu.Lock()
	gc.timer = time.AfterFunc(g.limits.LoginTimeout, gc.loginExpired)
	gc.mu.Unlock()
	if tlsConf != nil {
		return tls.Server(gc, tlsConf)
	}
	return gc
}

func (g *gateListener) release(c *guardedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pools[c.pool]--
	if c.pool == 0 {
		if g.perIP[c.ip]--; g.perIP[c.ip] <= 0 {
			delete(g.perIP, c.ip)
		}
	}
}

// guardedConn is an admitted connection: its place in the caps, its login
// deadline, its digest nonces and the pause owed after a failed login.
type guardedConn struct {
	net.Conn
	g      *gateListener
	ip     string
	pool   int
	timer  *time.Timer
	authed atomic.Bool
	once   sync.Once
	closed chan struct{}

	mu     sync.Mutex
	nonces map[string]*nonceState
	pause  time.Duration // before the next response (a refusal) goes out
}

func (c *guardedConn) Close() error {
	c.once.Do(func() {
		c.stopTimer()
		close(c.closed)
		c.g.release(c)
	})
	return c.Conn.Close()
}

// loginExpired closes a connection that has not logged in in time.
func (c *guardedConn) loginExpired() {
	if !c.authed.Load() {
		c.g.s.cut.Add(1)
		c.Close()
	}
}

// loggedIn lifts the login deadline.
func (c *guardedConn) loggedIn() {
	if c.authed.CompareAndSwap(false, true) {
		c.stopTimer()
	}
}

func (c *guardedConn) stopTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timer.Stop()
}

// owePause holds the connection's next response for at least d.
func (c *guardedConn) owePause(d time.Duration) {
	c.mu.Lock()
	c.pause = max(c.pause, d)
	c.mu.Unlock()
}

// takePause waits out the pause owed, if any, on the connection's own
// goroutine (other clients are not held up); closing the connection or
// the relay ends it early.
func (c *guardedConn) takePause(stop <-chan struct{}) {
	c.mu.Lock()
	d := c.pause
	c.pause = 0
	c.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.closed:
	case <-stop:
	}
}

// guarded returns the admitted connection under nc (a TLS one included).
func guarded(nc net.Conn) *guardedConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	gc, _ := nc.(*guardedConn)
	return gc
}

// failures counts recent failed logins per source address. Each failure
// puts its source in a pause (doubling per failure, up to Limits.MaxPause,
// forgotten after failureMemory) during which every answer from it, right
// or wrong, is held until the pause ends: an attacker that abandons a
// guess instead of waiting for its 401 learns nothing sooner.
type failures struct {
	mu  sync.Mutex
	m   map[string]failure
	max time.Duration // the longest pause (Limits.MaxPause)
}

type failure struct {
	n           int
	last, until time.Time
}

const (
	firstPause    = 250 * time.Millisecond
	failureMemory = time.Minute
	maxSources    = 4096
)

// record counts a failure from ip and returns the pause it earns.
func (f *failures) record(ip string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]failure{}
	}
	if len(f.m) >= maxSources {
		for k, v := range f.m {
			if now.Sub(v.last) > failureMemory {
				delete(f.m, k)
			}
		}
		for k := range f.m { // all recent (a spoofed-source flood): still bounded
			if len(f.m) < maxSources {
				break
			}
			delete(f.m, k)
		}
	}
	e := f.m[ip]
	if now.Sub(e.last) > failureMemory {
		e.n = 0
	}
	e.n++
	p := min(firstPause<<min(e.n-1, 5), f.max)
	e.last, e.until = now, now.Add(p)
	f.m[ip] = e
	return p
}

// wait is what remains of ip's pause.
func (f *failures) wait(ip string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return max(f.m[ip].until.Sub(now), 0)
}
