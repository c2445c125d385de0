package masking

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
)

// The DESCRIBE that reads the codec carries the camera's credentials, and
// gortsplib follows a redirect with them, to any host. A camera (or a
// man in the middle) that redirects it gets the open refused, and the
// host it names gets no request at all; a redirect to the camera's own
// address is not followed either (it would loop with the password).
func TestDescribeNeverFollowsARedirect(t *testing.T) {
	other := testkit.StartRogueRTSP(t, "127.0.0.2", `Basic realm="x"`)
	for name, location := range map[string]string{"another host": "rtsp://" + other.Addr + "/stream", "the same host": ""} {
		t.Run(name, func(t *testing.T) {
			cam := testkit.StartRogueRTSP(t, "127.0.0.1", `Digest realm="cam", nonce="abc"`)
			if location == "" {
				location = "rtsp://" + cam.Addr + "/elsewhere"
			}
			cam.OpenOptions()
			cam.Redirect(location)
			c := CaptureConfig{Camera: "c", URL: "rtsp://" + cam.Addr + "/stream", Username: "admin", Password: "s3cret", OpenTimeout: 6 * time.Second}
			_, _, err := c.streamCodec(context.Background())
			if !errors.Is(err, ErrRedirected) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("streamCodec after a redirect: %v, want ErrRedirected (without the password)", err)
			}
			if n := len(cam.Requests()); n > 4 {
				t.Errorf("%d requests to the camera: the redirect was followed", n)
			}
		})
	}
	if q := other.Requests(); len(q) != 0 {
		t.Errorf("the host the redirect named got %d requests (%+v): the credentials went with it", len(q), q)
	}
}
