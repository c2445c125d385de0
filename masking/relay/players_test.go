package relay_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking/relay"
)

// withCreds puts user:pass into an rtsp(s) URL (test credentials only).
func withCreds(u, user, pass string) string {
	i := strings.Index(u, "://")
	return u[:i+3] + user + ":" + pass + "@" + u[i+3:]
}

// ffmpegReads has ffmpeg decode three frames of url; extra go before -i.
func ffmpegReads(t *testing.T, url string, extra ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-loglevel", "warning", "-rtsp_transport", "tcp"}, extra...)
	args = append(args, "-i", url, "-frames:v", "3", "-f", "null", "-")
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return nil
}

// gstReads has GStreamer's rtspsrc read and decode five frames of url.
func gstReads(t *testing.T, url, user, pass string, extra ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-q", "rtspsrc", "location=" + url, "user-id=" + user, "user-pw=" + pass, "protocols=tcp"}, extra...)
	args = append(args, "!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!", "identity", "eos-after=5", "!", "fakesink")
	if out, err := exec.CommandContext(ctx, "gst-launch-1.0", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("gst-launch: %v: %s", err, out)
	}
	return nil
}

// Real players read through the digest login: ffmpeg and ffprobe (which
// answer with qop=auth) and GStreamer's rtspsrc (which answers without qop);
// a wrong password reads nothing. (rtspsrc with a wrong password retries
// nine times before it fails, about 10 s with the pauses: not run here.)
func TestPlayersReadWithDigest(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	read := s.ReadURL(streamID)
	if err := ffmpegReads(t, withCreds(read, opUser, opPass)); err != nil {
		t.Fatal(err)
	}
	if err := gstReads(t, read, opUser, opPass); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name", "-of", "csv=p=0", withCreds(read, opUser, opPass)).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "h264" {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	if err := ffmpegReads(t, withCreds(read, opUser, "wrong")); err == nil {
		t.Fatal("ffmpeg read with a wrong password")
	}
}

// RTSPS: the relay presents its certificate (verified against its CA),
// ffmpeg and rtspsrc read over TLS with digest, and a connection that never
// completes the TLS handshake is cut at the login deadline.
func TestRTSPSServesPlayers(t *testing.T) {
	pki := testkit.NewPKI(t, "relay-ca")
	crt := pki.Issue(t, "relay", true)
	kp, err := tls.LoadX509KeyPair(crt.CertFile, crt.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	s := startRelay(t, func(s *relay.Server) {
		s.ListenTLS(tlsAddr, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12})
		s.Limits.LoginTimeout = time.Second
	})
	publish(t, s, streamID)
	read := "rtsps://" + tlsAddr + "/" + streamID
	tc, err := tls.Dial("tcp", tlsAddr, pki.ClientTLS(t, nil))
	if err != nil {
		t.Fatalf("TLS with the relay's CA: %v", err)
	}
	tc.Close()
	if err := ffmpegReads(t, withCreds(read, opUser, opPass)); err != nil {
		t.Fatal(err)
	}
	if err := gstReads(t, read, opUser, opPass, "tls-validation-flags=0"); err != nil {
		t.Fatal(err)
	}
	raw := mustDial(t, "127.0.0.2", tlsAddr)
	time.Sleep(1500 * time.Millisecond)
	if n := held([]net.Conn{raw.c}); n != 0 {
		t.Fatal("a connection without a TLS handshake was held past the login deadline")
	}
}
