package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"velo/internal/testkit"
)

// siteWithBroker is testkit's site with a broker password file (and the
// state folder beside the config).
func siteWithBroker(t *testing.T) string {
	t.Helper()
	text := strings.Replace(testkit.SiteYAML, "gateway: gw-1\n",
		"gateway: gw-1\nstate_dir: state\nbroker: {url: \"tcp://127.0.0.1:1883\", username: gw, password_file: broker.pw}\n", 1)
	p := testkit.WriteSite(t, text)
	testkit.SecretFile(t, filepath.Dir(p), "broker.pw", "broker-secret\n")
	return p
}

// Each secret file named by the config is refused, with its field, when
// it is a FIFO (it would block velo run forever), a link, huge, owned by
// another user, or readable by others.
func TestSecretFilesAreCheckedOnTheOpenFile(t *testing.T) {
	fields := map[string]string{"cam.pw": "cameras[0].password_file", "ops.pw": "operators[0].password_file", "broker.pw": "broker.password_file"}
	attacks := []struct {
		name string
		make func(t *testing.T, p string)
		want string
	}{
		{"fifo", func(t *testing.T, p string) { mustDo(t, os.Remove(p), syscall.Mkfifo(p, 0o600)) }, "named pipe (FIFO), not a regular file"},
		{"link", func(t *testing.T, p string) {
			real := filepath.Join(t.TempDir(), "real")
			mustDo(t, os.Rename(p, real), os.Symlink(real, p))
		}, "is a symbolic link"},
		{"200 MB", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, 200<<20)) }, "209715200 bytes, over the limit"},
		{"foreign owner", func(t *testing.T, p string) { mustDo(t, os.Chown(p, 65534, 65534)) }, "owned by uid 65534"},
		{"readable by others", func(t *testing.T, p string) { mustDo(t, os.Chmod(p, 0o644)) }, "chmod 600"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for file, field := range fields {
				cfg := siteWithBroker(t)
				a.make(t, filepath.Join(filepath.Dir(cfg), file))
				start := time.Now()
				_, err := Load(cfg)
				if err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), a.want) {
					t.Errorf("%s: %v, want %q naming the field and file", file, err, a.want)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s: refused after %v", file, d)
				}
			}
		})
	}
	if _, err := Load(siteWithBroker(t)); err != nil {
		t.Fatalf("the good site: %v", err)
	}
}

// Run as root (the CLI on the gateway), velo reads the secrets the
// service account owns: the owner of state_dir.
func TestSecretsOfTheServiceAccountReadByRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cfg := siteWithBroker(t)
	dir := filepath.Dir(cfg)
	state := filepath.Join(dir, "state")
	mustDo(t, os.Mkdir(state, 0o700), os.Chown(state, 65534, 65534))
	for _, f := range []string{"cam.pw", "ops.pw", "broker.pw"} {
		mustDo(t, os.Chown(filepath.Join(dir, f), 65534, 65534))
	}
	if _, err := Load(cfg); err != nil {
		t.Fatalf("secrets of state_dir's owner refused: %v", err)
	}
	mustDo(t, os.Chown(filepath.Join(dir, "cam.pw"), 65533, 65533))
	if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), "owned by uid 65533") {
		t.Fatalf("another user's secret: %v", err)
	}
}

// The config itself: a FIFO is refused at once, a 200 MB file without
// being read.
func TestConfigFileIsBoundedAndRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "site.yaml")
	mustDo(t, syscall.Mkfifo(fifo, 0o600))
	start := time.Now()
	if _, err := Load(fifo); err == nil || !strings.Contains(err.Error(), "named pipe (FIFO)") || !strings.Contains(err.Error(), fifo) {
		t.Errorf("fifo: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("fifo refused after %v", d)
	}
	big := filepath.Join(dir, "big.yaml")
	mustDo(t, os.WriteFile(big, []byte(testkit.SiteYAML), 0o600), os.Truncate(big, 200<<20))
	if _, err := LoadUnchecked(big); err == nil || !strings.Contains(err.Error(), "over the limit") || !strings.Contains(err.Error(), big) {
		t.Errorf("200 MB config: %v", err)
	}
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
