package masking_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"velo/internal/testkit"
	"velo/masking"
	"velo/masking/relay"
)

// The agent wires the relay into the encoders as their StreamPublisher.
var _ masking.StreamPublisher = (*relay.Server)(nil)

// Close returns promptly after readers have come and gone (the stream goes
// to the relay in-process: nothing on the network to wait for).
func TestEncoderCloseNeverHangs(t *testing.T) {
	masking.ProbeElements() // its pipelines come and go before the base count
	pipes := masking.LivePipelines()
	for round := 0; round < 4; round++ {
		port := testkit.FreePortOn(t, "127.0.97.30")
		rel, err := relay.New(fmt.Sprintf("127.0.97.30:%d", port), "velo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := rel.Start(); err != nil {
			t.Fatal(err)
		}
		enc, err := masking.OpenEncoder(masking.EncoderConfig{Camera: "x", Width: 320, Height: 240, FPS: 10, Relay: rel})
		if err != nil {
			t.Fatal(err)
		}
		f := masking.NewFrame(320, 240)
		f.Masked = true
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		reader := make(chan error, 1)
		go func() {
			for !rel.Publishing("x") {
				time.Sleep(20 * time.Millisecond)
			}
			out, err := exec.CommandContext(ctx, "ffmpeg", "-loglevel", "warning", "-rtsp_transport", "tcp", "-i", rel.ReadURL("x"), "-frames:v", "3", "-f", "null", "-").CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
			reader <- err
		}()
		// Keep the stream flowing until the reader has its frames.
		var rerr error
	feed:
		for {
			select {
			case rerr = <-reader:
				break feed
			case <-time.After(50 * time.Millisecond):
				if err := enc.Write(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rerr != nil {
			t.Fatalf("reader: %v", rerr)
		}
		cancel()
		t0 := time.Now()
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("round %d: Close took %v", round, d)
		}
		if rel.Publishing("x") {
			t.Fatalf("round %d: stream still published after the encoder closed", round)
		}
		if n := masking.LivePipelines(); n != pipes {
			t.Fatalf("round %d: %d GStreamer pipelines alive after Close, want %d", round, n, pipes)
		}
		rel.Close()
	}
}
