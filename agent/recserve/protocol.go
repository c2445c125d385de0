// Package recserve makes the recordings reachable only through the running
// agent (G-3.4, G-3.3.1 a/b, ER-4.4, ER-4.5, ER-4.6): velo run serves them
// on a local unix socket, and velo recording is its client. The agent,
// which alone can read the state directory and the gateway key,
// authenticates the operator, checks role, camera and reason, writes the
// audit entry and streams the decrypted (already masked) segment back. The
// CLI never opens the store, the keys or the audit log.
//
// The protocol is one request per connection: a JSON line (at most
// MaxRequest bytes, sent within RequestTimeout), answered by a JSON reply
// line; a view or an export then streams the segment in frames (a 4-byte
// big-endian length and that many bytes; length 0 ends it) followed by a
// JSON trailer line saying whether every byte was sent and verified. A
// data subject's copy streams two such runs, the MP4 then its sidecar,
// before the trailer.
package recserve

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"velo/agent/retention"
)

// Version is the protocol version a request carries.
const Version = 1

// Limits of the server.
const (
	// MaxRequest bounds a request line (a password, names, a reference).
	MaxRequest = 16 << 10
	// RequestTimeout is how long a client has to send its request.
	RequestTimeout = 5 * time.Second
	// WriteIdle closes a connection whose client stops reading.
	WriteIdle = 30 * time.Second
	// MaxConns bounds the connections served at once; as many more wait
	// up to SlotWait for a slot, the rest are told the agent is busy.
	MaxConns = 8
	SlotWait = time.Second
	// maxFrame bounds a frame of the streamed segment.
	maxFrame = 64 << 10
	// maxReply bounds a reply line (a list of many segments).
	maxReply = 32 << 20
)

// Operations a request names.
const (
	OpList    = "list"
	OpView    = "view"
	OpExport  = "export"
	OpHold    = "hold"
	OpRelease = "release"
	// OpSubjectExport: a data subject's copy (G-3.5): a camera's range
	// with the requester marked, everyone else masked (subject.go).
	OpSubjectExport = "subject-export"
)

// Request is what velo recording asks. The password travels only over the
// local socket, never in argv or a log.
type Request struct {
	V        int    `json:"v"`
	Op       string `json:"op"`
	Operator string `json:"operator"`
	Password string `json:"password"`
	Camera   string `json:"camera,omitempty"`  // list: only this camera
	Segment  string `json:"segment,omitempty"` // view, export, hold, release
	Reason   string `json:"reason,omitempty"`  // view (ER-4.4)
	Ref      string `json:"ref,omitempty"`     // view, export, hold
	Out      string `json:"out,omitempty"`     // export: the file's base name, for the audit
	// subject-export: the range of Camera and the mark on the data
	// subject (spec.ParseMark); Reason data-subject-request, Ref the
	// request's reference.
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	Mark string     `json:"mark,omitempty"`
}

// Site names the gateway, for an export's sidecar.
type Site struct {
	Name       string `json:"name"`
	Controller string `json:"controller"`
	Gateway    string `json:"gateway"`
}

// Listed is a segment as velo recording list shows it.
type Listed struct {
	retention.Segment
	AgeS      int64  `json:"age_s"`
	ExpiresS  int64  `json:"expires_in_s"`
	Retention string `json:"retention"`
	Hold      string `json:"hold_ref,omitempty"`
}

// Reply answers a request. Refused: the agent said no (audited); Error
// says why, for the operator.
type Reply struct {
	OK       bool               `json:"ok"`
	Refused  bool               `json:"refused,omitempty"`
	Error    string             `json:"error,omitempty"`
	Site     *Site              `json:"site,omitempty"`
	Segments []Listed           `json:"segments,omitempty"`
	Segment  *retention.Segment `json:"segment,omitempty"`
	Hold     *retention.Hold    `json:"hold,omitempty"`
}

// Trailer ends a streamed segment: OK only when every byte was decrypted,
// verified and sent (and, for an export, audited).
type Trailer struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256,omitempty"`
	AuditSeq uint64 `json:"audit_seq,omitempty"`
	// A subject copy's sidecar, streamed after its MP4.
	SidecarBytes  int64  `json:"sidecar_bytes,omitempty"`
	SidecarSHA256 string `json:"sidecar_sha256,omitempty"`
}

// writeLine writes v as one JSON line.
func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// errTooLong is a line over its bound.
var errTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes (without its newline).
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			line = line[:len(line)-1]
			if len(line) > max {
				return nil, errTooLong
			}
			return line, nil
		}
		switch {
		case len(line) > max:
			return nil, errTooLong
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// frameWriter streams what is written to it as frames, each write under a
// fresh deadline (a client that stops reading is cut after WriteIdle).
type frameWriter struct {
	w        io.Writer
	deadline func() // sets the next write deadline
}

func (f frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), maxFrame)]
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(c)))
		f.deadline()
		if _, err := f.w.Write(append(hdr[:], c...)); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}

// end writes the zero-length frame that ends the stream.
func (f frameWriter) end() error {
	f.deadline()
	_, err := f.w.Write([]byte{0, 0, 0, 0})
	return err
}

// readFrames copies the frames from r to w until the end frame.
func readFrames(r io.Reader, w io.Writer, deadline func()) (int64, error) {
	var n int64
	buf := make([]byte, maxFrame)
	for {
		deadline()
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return n, fmt.Errorf("the stream ended early: %w", err)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 {
			return n, nil
		}
		if size > maxFrame {
			return n, fmt.Errorf("a frame of %d bytes (at most %d)", size, maxFrame)
		}
		if _, err := io.ReadFull(r, buf[:size]); err != nil {
			return n, fmt.Errorf("the stream ended early: %w", err)
		}
		if _, err := w.Write(buf[:size]); err != nil {
			return n, err
		}
		n += int64(size)
	}
}
