package recserve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"velo/agent/attempts"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/retention"
)

// Store is what the server reads of the running agent's sealed segments
// (retention.Store).
type Store interface {
	Segments() []retention.Segment
	Age(retention.Segment) time.Duration
	Decrypt(name string, w io.Writer) (int64, error)
}

// Auditor appends audit entries (audit.Log).
type Auditor interface {
	Append(audit.Entry) (audit.Entry, error)
}

// SocketMode is the socket's mode: the velo user and its group (the
// operators allowed to run velo recording on the gateway).
const SocketMode = 0o660

// Server serves the recordings on a unix socket.
type Server struct {
	// Config is the config in force (reloads change operators and
	// retention; the socket's path is fixed at start).
	Config func() *config.Config
	Store  Store
	Audit  Auditor
	Log    zerolog.Logger
	// Subjects makes data subjects' copies (G-3.5); nil: none are made.
	Subjects SubjectCopier

	path    string
	ln      *net.UnixListener
	slots   chan struct{}
	waiters chan struct{}        // connections waiting for a slot
	auth    sync.Mutex           // one password check (600 000 PBKDF2 rounds) at a time
	bursts  *attempts.Aggregator // refused logins per peer uid (loginRefused)
	wg      sync.WaitGroup
	// subjectSlot: one subject copy at a time.
	subjectSlot chan struct{}
}

// Listen makes the socket at path (mode SocketMode; its folder, when
// missing, mode 0750). A stale socket left by a crash is replaced; a live
// one (another velo run), or anything that is not a socket, is refused.
func Listen(path string) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("recording socket %s: %w", path, err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("recording socket %s: a %v is there, not a socket: remove it or set outputs.recording_socket", path, st.Mode().Type())
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("recording socket %s: another velo run serves it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("recording socket %s: removing the stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("recording socket %s (outputs.recording_socket): %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("recording socket %s: %w", path, err)
	}
	return &Server{path: path, ln: ln, slots: make(chan struct{}, MaxConns), waiters: make(chan struct{}, MaxConns),
		bursts: attempts.New(attempts.Options{}), subjectSlot: make(chan struct{}, 1)}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers clients until ctx ends, then closes the socket (removing
// it) and waits for the connections being served.
func (s *Server) Serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	s.wg.Go(func() { s.auditBursts(ctx) })
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			s.Log.Warn().Err(err).Str("socket", s.path).Msg("recording socket: accept failed")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case s.slots <- struct{}{}:
			s.wg.Go(func() { s.serveConn(ctx, c, func() { <-s.slots }) })
		case s.waiters <- struct{}{}:
			s.wg.Go(func() {
				defer func() { <-s.waiters }()
				s.awaitSlot(ctx, c)
			})
		default:
			busy(c)
		}
	}
	s.ln.Close()
	s.wg.Wait()
}

// auditBursts writes, every second, one audit entry for each burst of
// refused logins that is over (its first refusal was audited on its own);
// at the end, for every burst still open.
func (s *Server) auditBursts(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.auditSummaries(s.bursts.Close())
			return
		case now := <-t.C:
			s.auditSummaries(s.bursts.Due(now))
		}
	}
}

func (s *Server) auditSummaries(sums []attempts.Summary) {
	for _, sum := range sums {
		e := audit.Entry{Actor: "agent", Action: sum.Kind, Outcome: "refused",
			Detail: fmt.Sprintf("%d refused requests without a valid operator login from %s, %s to %s; operators named: %s",
				sum.Count, sum.Source, sum.First.UTC().Format(time.RFC3339), sum.Last.UTC().Format(time.RFC3339), strings.Join(sum.Names, ", ")),
			Fields: map[string]string{"peer": sum.Source, "count": strconv.Itoa(sum.Count)}}
		if sum.More {
			e.Detail += " …"
		}
		if _, err := s.Audit.Append(e); err != nil {
			s.Log.Error().Err(err).Str("action", e.Action).Msg("audit entry not written")
		}
	}
}

// awaitSlot serves c once a slot frees within SlotWait (a client asking
// again as soon as its last answer arrived, a short burst); else it is
// told the agent is busy.
func (s *Server) awaitSlot(ctx context.Context, c *net.UnixConn) {
	t := time.NewTimer(SlotWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		s.serveConn(ctx, c, func() { <-s.slots })
	case <-t.C:
		busy(c)
	case <-ctx.Done():
		c.Close()
	}
}

func busy(c *net.UnixConn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeLine(c, Reply{Error: fmt.Sprintf("busy: %d requests are being served, try again", MaxConns)})
	c.Close()
}

// Close stops accepting (Serve returns once the connections end).
func (s *Server) Close() error { return s.ln.Close() }

// peer is who is at the other end, as the kernel says (SO_PEERCRED).
type peer struct{ pid, uid, gid int }

func (p peer) String() string { return fmt.Sprintf("pid %d uid %d gid %d", p.pid, p.uid, p.gid) }

func peerOf(c *net.UnixConn) peer {
	p := peer{-1, -1, -1}
	raw, err := c.SyscallConn()
	if err != nil {
		return p
	}
	_ = raw.Control(func(fd uintptr) {
		if u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p = peer{int(u.Pid), int(u.Uid), int(u.Gid)}
		}
	})
	return p
}

// serveConn reads one request (bounded in size and time) and answers it.
// A client that sends garbage, too much or nothing is answered (if it
// still listens) and cut; the agent carries on. release frees the
// connection's slot before the client sees the end, so a client that asks
// again at once finds it free.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, release func()) {
	defer c.Close()
	defer release()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	who := peerOf(c)
	_ = c.SetReadDeadline(time.Now().Add(RequestTimeout))
	line, err := readLine(bufio.NewReaderSize(c, 4096), MaxRequest)
	var req Request
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		err = dec.Decode(&req)
		if err == nil && req.V != Version {
			err = fmt.Errorf("protocol version %d, want %d", req.V, Version)
		}
	}
	if err != nil {
		why := badRequest(err)
		s.Log.Warn().Str("peer", who.String()).Str("socket", s.path).Msg("recording socket: request refused: " + why)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_ = writeLine(c, Reply{Error: "request refused: " + why})
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	s.Log.Info().Str("peer", who.String()).Str("op", req.Op).Str("operator", cut(req.Operator)).Str("segment", cut(req.Segment)).Msg("recording request")
	s.handle(ctx, c, who, &req)
}

// badRequest says what was wrong with a request, for the log and the
// client (never echoing its content: it may hold a password).
func badRequest(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errTooLong):
		return fmt.Sprintf("larger than %d bytes", MaxRequest)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("not sent within %v", RequestTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the client hung up before its request ended"
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return "not a JSON request"
	}
	return cut(err.Error())
}

// cut bounds a client-given string before it reaches the log or the
// audit (the audit escapes what it shows).
func cut(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
