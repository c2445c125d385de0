package testkit_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"velo/internal/testkit"
)

func TestFreePortCanBeBound(t *testing.T) {
	cases := map[string]int{
		"127.0.0.1":  testkit.FreePort(t),
		"127.0.93.7": testkit.FreePortOn(t, "127.0.93.7"),
	}
	for host, port := range cases {
		if port <= 0 || port > 65535 {
			t.Fatalf("%s: port %d", host, port)
		}
		ln, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("%s: the free port cannot be bound: %v", host, err)
		}
		t.Cleanup(func() { ln.Close() })
	}
}

func TestSecretFileIsOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	// An existing, world-readable file is narrowed too.
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := testkit.SecretFile(t, dir, "pw", "s3cret")
	if path != filepath.Join(dir, "pw") {
		t.Errorf("path %q", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "s3cret" {
		t.Errorf("content %q, %v", b, err)
	}
}
