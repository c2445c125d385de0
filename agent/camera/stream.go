package camera

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"velo/agent/config"
	"velo/agent/event"
	"velo/masking"
	"velo/onvif"
)

// Why a stream URI is refused (event.StreamRefusal.Reason).
const (
	ReasonHostMismatch = "host_mismatch" // the URI names another host than the camera
	ReasonBasicOnly    = "basic_only"    // the RTSP server offers only Basic over plaintext
	ReasonRedirect     = "redirect"      // the RTSP server redirects: the clients would follow it
)

// checkTimeout bounds the credential-less requests of CheckStream.
const checkTimeout = 5 * time.Second

// maxHostLen caps a host named by a camera before it goes into an error or
// event (a hostile reply may name a huge one).
const maxHostLen = 255

// RefusedError is a stream URI refused before any credential was sent to
// it. It never holds the credentials.
type RefusedError struct {
	Camera     string
	Reason     string // ReasonHostMismatch, ReasonBasicOnly or ReasonRedirect
	NamedHost  string // host[:port] the stream URI names
	PinnedHost string // the configured camera's host
}

func (e *RefusedError) Error() string {
	if e.Reason == ReasonRedirect {
		return fmt.Sprintf("camera %q: the RTSP server at %s answers with a redirect, which the stream clients would follow with the credentials: stream refused, credentials not sent",
			e.Camera, e.NamedHost)
	}
	if e.Reason == ReasonBasicOnly {
		return fmt.Sprintf("camera %q: the RTSP server at %s offers only Basic authentication over plaintext rtsp://: stream refused, credentials not sent",
			e.Camera, e.NamedHost)
	}
	return fmt.Sprintf("camera %q: the stream URI names host %s, not the camera's host %s: stream refused, credentials not sent",
		e.Camera, e.NamedHost, e.PinnedHost)
}

// Event is the refusal as a stream_refused event.
func (e *RefusedError) Event() event.Event {
	return event.Event{Kind: event.StreamRefused, Camera: e.Camera, Detail: e.Error(),
		Stream: &event.StreamRefusal{Reason: e.Reason, NamedHost: e.NamedHost, PinnedHost: e.PinnedHost}}
}

// pinStream refuses a stream URI whose host is not the host of the
// camera's configured ONVIF address. The port may differ (RTSP has its own
// port on the camera). Refused rather than rewritten: a camera naming
// another host is misconfigured (NAT) or spoofed, and either way an
// operator must look; a rewrite would hide it.
func pinStream(camera, xaddr, uri string) (u *url.URL, pinned string, err error) {
	x, err := url.Parse(xaddr)
	if err != nil || x.Host == "" {
		return nil, "", fmt.Errorf("camera %q: bad xaddr %s", camera, config.RedactURL(xaddr))
	}
	u, err = url.Parse(uri)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("camera %q: bad stream URI %s", camera, config.RedactURL(uri))
	}
	if !sameHost(u.Hostname(), x.Hostname()) {
		return nil, "", &RefusedError{Camera: camera, Reason: ReasonHostMismatch, NamedHost: capHost(u.Host), PinnedHost: x.Hostname()}
	}
	return u, x.Hostname(), nil
}

// sameHost compares IP literals by value and names case-insensitively.
func sameHost(a, b string) bool {
	if ia, ib := net.ParseIP(a), net.ParseIP(b); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

func capHost(h string) string {
	if len(h) > maxHostLen {
		return h[:maxHostLen] + "…"
	}
	return h
}

// CheckStream pins the stream URI to the camera's host and asks the RTSP
// server, without credentials, how it wants them (rtspChallenges): a server that offers
// only Basic is refused, because GStreamer's rtspsrc and FFmpeg would
// answer Basic (the password in clear) and cannot be told not to. Neither
// answers Basic when Digest is offered beside it.
func CheckStream(ctx context.Context, camera, xaddr, uri string) error {
	u, pinned, err := pinStream(camera, xaddr, uri)
	if err != nil {
		return err
	}
	if u.Scheme != "rtsp" {
		return fmt.Errorf("camera %q: stream URI %s: want rtsp://", camera, config.RedactURL(uri))
	}
	u.User = nil // the check carries no credentials, not even in the URI
	sets, err := rtspChallenges(ctx, u)
	if errors.Is(err, errRedirect) {
		return &RefusedError{Camera: camera, Reason: ReasonRedirect, NamedHost: capHost(u.Host), PinnedHost: pinned}
	}
	if err != nil {
		return fmt.Errorf("camera %q: stream check at %s: %w", camera, capHost(u.Host), err)
	}
	for _, challenges := range sets {
		if basicOnly(challenges) {
			return &RefusedError{Camera: camera, Reason: ReasonBasicOnly, NamedHost: capHost(u.Host), PinnedHost: pinned}
		}
	}
	return nil
}

// basicOnly reports whether an RTSP client would have to answer Basic: the
// server offers Basic and no Digest (rtspsrc and FFmpeg answer Digest, or
// nothing, whenever Digest is offered: TestStreamClientsPreferDigest).
func basicOnly(challenges []onvif.Challenge) bool {
	basic, digest := false, false
	for _, ch := range challenges {
		switch strings.ToLower(ch.Scheme) {
		case "basic":
			basic = true
		case "digest":
			digest = true
		}
	}
	return basic && !digest
}

// errRedirect: the server answered a check with a redirect, which the
// stream clients would follow, credentials and all, to wherever it points.
var errRedirect = errors.New("redirect")

// rtspChallenges sends OPTIONS, then DESCRIBE (the stream clients' first
// two requests) without credentials on one connection, and returns the
// challenges of every 401 reply. A redirect is errRedirect; any other
// reply but 2xx and 401 is an error (nothing is handed over on a guess).
// A server that closes after challenging OPTIONS is judged on that one.
func rtspChallenges(ctx context.Context, u *url.URL) ([][]onvif.Challenge, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	port := u.Port()
	if port == "" {
		port = "554"
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(io.LimitReader(conn, 64<<10)) // both replies together
	var sets [][]onvif.Challenge
	for seq, method := range []string{"OPTIONS", "DESCRIBE"} {
		code, h, err := rtspRequest(conn, r, method, u, seq+1)
		switch {
		case err != nil && len(sets) > 0:
			return sets, nil
		case err != nil:
			return nil, fmt.Errorf("%s: %w", method, err)
		case code == 401:
			sets = append(sets, onvif.ParseChallenges(h.Values("WWW-Authenticate")))
		case code >= 300 && code < 400:
			return nil, fmt.Errorf("%s answered %d: %w", method, code, errRedirect)
		case code < 200 || code >= 300:
			return nil, fmt.Errorf("%s answered %d", method, code)
		}
	}
	return sets, nil
}

// rtspRequest sends one request without credentials and reads its reply.
func rtspRequest(conn net.Conn, r *bufio.Reader, method string, u *url.URL, cseq int) (int, textproto.MIMEHeader, error) {
	req := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: velo\r\n\r\n", method, u, cseq)
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, nil, err
	}
	return readRTSPReply(r)
}

// readRTSPReply reads one reply's status and headers and skips its body.
func readRTSPReply(r *bufio.Reader) (int, textproto.MIMEHeader, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, fmt.Errorf("no RTSP reply: %w", err)
	}
	f := strings.Fields(line)
	code := 0
	if len(f) >= 2 && strings.HasPrefix(f[0], "RTSP/1.") {
		code, _ = strconv.Atoi(f[1])
	}
	if code < 100 || code > 999 {
		return 0, nil, fmt.Errorf("not an RTSP reply: %.40q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("RTSP reply headers: %w", err)
	}
	if n, err := strconv.Atoi(h.Get("Content-Length")); err == nil && n > 0 {
		if _, err := r.Discard(n); err != nil {
			return 0, nil, fmt.Errorf("RTSP reply body: %w", err)
		}
	}
	return code, h, nil
}

// Opener is the capture of the camera's stream that checks the stream
// again (CheckStream) before each connection hands it the credentials: a
// camera (or a man in the middle) that turns to Basic after the session
// started is refused too, and refused is told (the session goes on
// retrying, each time checked). cc is Capture(c, uri) with its deadlines.
func Opener(c *config.CameraConfig, cc masking.CaptureConfig, refused func(*RefusedError)) (masking.Opener, error) {
	uri := cc.URL
	open, err := cc.Opener()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (masking.Source, error) {
		if err := CheckStream(ctx, c.ID, c.XAddr, uri); err != nil {
			if r := (*RefusedError)(nil); errors.As(err, &r) && refused != nil {
				refused(r)
			}
			return nil, err
		}
		return open(ctx)
	}, nil
}
