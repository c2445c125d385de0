package recserve

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ErrNotServing means nothing answers on the socket: velo run is not
// running (or the site records nothing, or the caller may not connect).
var ErrNotServing = errors.New("recordings are reachable only through the running agent")

// RefusedError is the agent's refusal (audited by the agent).
type RefusedError struct{ Why string }

func (e *RefusedError) Error() string { return "refused: " + e.Why }

// Client asks the running agent on Socket. Wait bounds how long a reply
// (or the next bytes of a segment) may take: the agent checks one
// password at a time.
type Client struct {
	Socket string
	Wait   time.Duration
}

func (c *Client) wait() time.Duration {
	if c.Wait > 0 {
		return c.Wait
	}
	return 2 * time.Minute
}

// Do sends req and returns the agent's reply. For a view or an export
// (body non-nil) the segment is copied to body and the trailer returned;
// an error from the trailer means body got less than the whole, verified
// segment and must be discarded.
func (c *Client) Do(req Request, body io.Writer) (Reply, *Trailer, error) {
	if body == nil || (req.Op != OpView && req.Op != OpExport) {
		return c.do(req, nil)
	}
	return c.do(req, func(br *bufio.Reader, deadline func()) (*Trailer, error) {
		n, err := readFrames(br, body, deadline)
		if err != nil {
			return nil, fmt.Errorf("segment %s from %s: %w", req.Segment, c.Socket, err)
		}
		tr, err := c.trailer(br, "segment "+req.Segment)
		if err == nil && tr.Bytes != n {
			err = fmt.Errorf("segment %s: %d bytes received, the agent sent %d", req.Segment, n, tr.Bytes)
		}
		return tr, err
	})
}

// do sends req, reads the reply and, when it is OK and body is set, what
// streams after it.
func (c *Client) do(req Request, body func(br *bufio.Reader, deadline func()) (*Trailer, error)) (Reply, *Trailer, error) {
	req.V = Version
	conn, err := net.DialTimeout("unix", c.Socket, 5*time.Second)
	if err != nil {
		return Reply{}, nil, fmt.Errorf("%w: nothing answers on %s (is velo run running, with outputs.recording_socket there, and are you in its group?): %v",
			ErrNotServing, c.Socket, unwrapOp(err))
	}
	defer conn.Close()
	deadline := func() { _ = conn.SetDeadline(time.Now().Add(c.wait())) }
	deadline()
	if err := writeLine(conn, req); err != nil {
		return Reply{}, nil, fmt.Errorf("recording socket %s: %w", c.Socket, err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	var rep Reply
	if err := readJSON(br, &rep, maxReply); err != nil {
		return Reply{}, nil, fmt.Errorf("recording socket %s: no reply: %w", c.Socket, err)
	}
	if rep.Refused {
		return rep, nil, &RefusedError{Why: rep.Error}
	}
	if !rep.OK {
		return rep, nil, fmt.Errorf("the agent on %s: %s", c.Socket, rep.Error)
	}
	if body == nil {
		return rep, nil, nil
	}
	tr, err := body(br, deadline)
	return rep, tr, err
}

// trailer reads the trailer that ends a stream; an error when it says the
// stream is not whole.
func (c *Client) trailer(br *bufio.Reader, what string) (*Trailer, error) {
	var tr Trailer
	if err := readJSON(br, &tr, MaxRequest); err != nil {
		return nil, fmt.Errorf("%s from %s: no trailer: %w", what, c.Socket, err)
	}
	if !tr.OK {
		return &tr, fmt.Errorf("%s: the agent could not send it whole: %s", what, tr.Error)
	}
	return &tr, nil
}

func readJSON(br *bufio.Reader, v any, max int) error {
	line, err := readLine(br, max)
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// unwrapOp drops net.OpError's repetition of the address.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
