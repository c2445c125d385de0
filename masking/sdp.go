package masking

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
func (c CaptureConfig) streamCodec(ctx context.Context) (codec.Codec, string) {
	sdp, err := c.describeCodec(ctx)
	switch {
	case err != nil && c.Codec != "":
		return c.Codec, "SDP not read (" + err.Error() + "): decoding the profile's " + string(c.Codec)
	case err != nil:
		return codec.H264, "SDP not read (" + err.Error() + ") and the profile names no codec: trying H264"
	case c.Codec != "" && sdp != c.Codec:
		return sdp, fmt.Sprintf("the profile says %s, the stream's SDP %s: decoding %s", c.Codec, sdp, sdp)
	}
	return sdp, ""
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
	cl := &gortsplib.Client{ReadTimeout: d, WriteTimeout: d}
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
