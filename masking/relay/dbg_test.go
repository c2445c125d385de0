package relay_test

import (
	"os"
	"os/exec"
	"testing"
)

func TestDbgGst(t *testing.T) {
	s := startRelay(t, nil)
	publish(t, s, streamID)
	cmd := exec.Command("timeout", "8", "gst-launch-1.0", "rtspsrc", "location="+s.ReadURL(streamID), "user-id=ops", "user-pw=wrong", "protocols=tcp", "!", "fakesink")
	cmd.Env = append(os.Environ(), "GST_DEBUG=rtspsrc:6,rtspconnection:6")
	out, _ := cmd.CombinedOutput()
	os.WriteFile("/tmp/gst.log", out, 0o644)
}
