package masking

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"velo/masking/codec"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
)

// describeTimeout bounds the DESCRIBE that reads the stream's SDP.
const describeTimeout = 5 * time.Second

// streamCodec is the codec to decode: the SDP's (what the camera sends),
// confirmed against the profile's c.Codec. note says when they disagree,
// or why the SDP could not be read (then the profile's codec, or H.264
// when the profile named none, is tried: a stream that is not that will
// not open, and the error says so).
func (c CaptureConfig) streamCodec(ctx context.Context) (codec.Codec, string, error) {
	sdp, err := c.describeCodec(ctx)
	if errors.Is(err, ErrRedirected) {
		return "", "", err
	}
	switch {
	case err != nil && c.Codec != "":
		return c.Codec, "SDP not read (" + err.Error() + "): decoding the profile's " + string(c.Codec), nil
	case err != nil:
		return codec.H264, "SDP not read (" + err.Error() + ") and the profile names no codec: trying H264", nil
	case c.Codec != "" && sdp != c.Codec:
		return sdp, fmt.Sprintf("the profile says %s, the stream's SDP %s: decoding %s", c.Codec, sdp, sdp), nil
	}
	return sdp, "", nil
}

// ErrRedirected: the camera answered the DESCRIBE that carries its
// credentials with a redirect. The redirect is not followed (the
// credentials would go with it) and the stream is not opened: rtspsrc and
// FFmpeg would follow it with the password.
var ErrRedirected = errors.New("the camera redirects the authenticated DESCRIBE: not followed, stream not opened (the password would go with it)")

// pinnedDial connects to addr only, and never again once the camera
// redirected: a redirect, to any address, is not followed, so the
// credentials reach the camera alone.
func pinnedDial(addr string, redirected *atomic.Bool) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, to string) (net.Conn, error) {
		if redirected.Load() || to != addr {
			redirected.Store(true)
			return nil, ErrRedirected
		}
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}
}

// rtspAddr is the host:port an RTSP URL connects to (554, or 322 for rtsps).
func rtspAddr(u *base.URL) string {
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// describeCodec asks the camera for the stream's SDP (RTSP DESCRIBE, with
// the camera's credentials: the URI was checked before, see
// agent/camera.CheckStream) and returns its video codec.
func (c CaptureConfig) describeCodec(ctx context.Context) (codec.Codec, error) {
	d := min(describeTimeout, c.OpenTimeout/3)
	if d <= 0 {
		d = describeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", errors.New("bad URL")
	}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	bu, err := base.ParseURL(u.String())
	if err != nil {
		return "", errors.New("bad URL")
	}
	var redirected atomic.Bool
	cl := &gortsplib.Client{ReadTimeout: d, WriteTimeout: d, DialContext: pinnedDial(rtspAddr(bu), &redirected),
		// gortsplib follows a redirect with the credentials, even to the
		// same host: any redirect is refused here.
		OnResponse: func(res *base.Response) {
			if res.StatusCode >= base.StatusMovedPermanently && res.StatusCode <= base.StatusUseProxy {
				redirected.Store(true)
			}
		}}
	type result struct {
		c   codec.Codec
		err error
	}
	done := make(chan result, 1)
	go func() {
		if err := cl.Start(bu.Scheme, bu.Host); err != nil {
			done <- result{err: errors.New("connect failed")}
			return
		}
		defer cl.Close()
		desc, _, err := cl.Describe(bu)
		if redirected.Load() {
			done <- result{err: ErrRedirected}
			return
		}
		if err != nil {
			// gortsplib's errors may carry the URL: keep them out.
			done <- result{err: errors.New("DESCRIBE failed")}
			return
		}
		for _, m := range desc.Medias {
			for _, f := range m.Formats {
				switch f.(type) {
				case *format.H264:
					done <- result{c: codec.H264}
					return
				case *format.H265:
					done <- result{c: codec.H265}
					return
				}
			}
		}
		done <- result{err: errors.New("no H264 or H265 video in the SDP")}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("DESCRIBE: no answer within %v", d)
	}
}
