// Package testkit holds helpers shared by Velo's tests: free loopback TCP
// ports, secret files, a site config, a real Mosquitto and a cutting proxy. It is for tests only: import it from _test.go
// files, never from a package that ships (it imports testing).
package testkit

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
// Another process may take it before the test binds it; tests that can
// should listen on port 0 instead.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortOn(t, "127.0.0.1")
}

// FreePortOn is FreePort on another loopback address (e.g. a simulated
// camera's 127.0.x.y).
func FreePortOn(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("testkit: free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// SecretFile writes content to dir/name, readable by the owner only
// (0600, also when the file existed), and returns its path.
func SecretFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("testkit: secret file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("testkit: secret file: %v", err)
	}
	return path
}
