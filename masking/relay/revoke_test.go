package relay_test

import (
	"context"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking/relay"
)

// An operator whose right to watch is gone (removed by a reload, camera
// taken away, stream password expired) loses the live view already open:
// Revoke closes exactly the sessions its check refuses, and the player
// (ffmpeg, reading without end) sees its stream end.
func TestRevokeCutsOpenReaders(t *testing.T) {
	var playing atomic.Int32
	s := startRelay(t, func(s *relay.Server) {
		s.OnAccess = func(user, stream, remote string, ok bool) {
			if ok {
				playing.Add(1)
			}
		}
	})
	publish(t, s, streamID)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-rtsp_transport", "tcp",
		"-i", withCreds(s.ReadURL(streamID), opUser, opPass), "-f", "null", "-")
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan time.Time, 1)
	go func() { _ = ff.Wait(); exited <- time.Now() }()
	testkit.WaitFor(t, 15*time.Second, "ffmpeg playing", func() bool { return playing.Load() == 1 })

	if cut := s.Revoke(func(user, stream string) bool { return true }); len(cut) != 0 {
		t.Fatalf("a reader still allowed was cut: %v", cut)
	}
	select {
	case <-exited:
		t.Fatal("ffmpeg stopped while still allowed")
	case <-time.After(time.Second):
	}
	t0 := time.Now()
	cut := s.Revoke(func(user, stream string) bool { return user != opUser })
	if len(cut) != 1 || cut[0][0] != opUser || cut[0][1] != streamID {
		t.Fatalf("cut %v, want ops on %s", cut, streamID)
	}
	select {
	case at := <-exited:
		t.Logf("FIGURE: the revoked live view ended %v after Revoke", at.Sub(t0).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("ffmpeg still reading 15 s after its reader was revoked")
	}
}
