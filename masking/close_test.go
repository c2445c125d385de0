package masking_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"velo/masking"
	"velo/masking/relay"
)

// rtspclientsink may wait forever on its TEARDOWN after a reader has come
// and gone; Close must still return (Abort → relay.Kick).
func TestEncoderCloseNeverHangs(t *testing.T) {
	for round := 0; round < 4; round++ {
		port := freePort(t, "127.0.97.30")
		rel, err := relay.New(fmt.Sprintf("127.0.97.30:%d", port), "velo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := rel.Start(); err != nil {
			t.Fatal(err)
		}
		enc, err := masking.OpenEncoder(masking.EncoderConfig{Camera: "x", Width: 320, Height: 240, FPS: 10,
			PublishURL: rel.PublishURL("x"), Abort: func() { rel.Kick("x") }, CloseTimeout: time.Second})
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
			reader <- exec.CommandContext(ctx, "ffmpeg", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", rel.ReadURL("x"), "-frames:v", "3", "-f", "null", "-").Run()
		}()
		for i := 0; i < 30; i++ {
			if err := enc.Write(f); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		<-reader
		cancel()
		t0 := time.Now()
		_ = enc.Close()
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("round %d: Close took %v", round, d)
		}
		rel.Close()
	}
}
