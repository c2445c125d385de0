package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"velo/agent/config"
)

// agentSite makes a testkit site runnable by a real velo run beside other
// tests: free relay and broker ports, the recordings socket in its folder.
func agentSite(t *testing.T, text string) string {
	t.Helper()
	text = strings.Replace(text, "  rtsp_listen: 127.0.0.1:18654\n", "  rtsp_listen: "+freeAddr(t)+"\n  recording_socket: rec.sock\n", 1)
	return strings.Replace(text, "gateway: gw-1\n", "gateway: gw-1\nbroker: {embedded_listen: \""+freeAddr(t)+"\"}\n", 1)
}

// startAgent runs `velo run --config cfg` as a child process until the
// test ends (or stop), and returns once its recordings socket answers.
func startAgent(t *testing.T, cfg string) (logs *lockedBuf, stop func()) {
	t.Helper()
	c, err := config.LoadUnchecked(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "VELO_CLI_CHILD=1")
	logs = &lockedBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("unix", c.Outputs.RecordingSocket); err == nil {
			conn.Close()
			return logs, stop
		}
		select {
		case <-exited:
			t.Fatalf("velo run exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("velo run does not serve %s after 60 s:\n%s", c.Outputs.RecordingSocket, logs.String())
		}
	}
}
