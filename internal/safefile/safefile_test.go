package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// victim is a file the attacker wants overwritten (a root-owned file in
// the tests, which run as root).
func victim(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(p, []byte("ORIGINAL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func untouched(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	st, serr := os.Lstat(p)
	if err != nil || serr != nil || string(b) != "ORIGINAL\n" || st.Mode() != 0o600 {
		t.Errorf("victim changed: %q %v, mode %v %v", b, err, st.Mode(), serr)
	}
}

// A link at the target is replaced, never written through; the file gets
// its mode whatever the umask; no temporary file is left.
func TestWriteFileReplacesALinkAtTheTarget(t *testing.T) {
	v := victim(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Symlink(v, out); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(v, out+".tmp"); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := WriteFile(out, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	untouched(t, v)
	st, err := os.Lstat(out)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o640 {
		t.Fatalf("target: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new\n" {
		t.Errorf("target holds %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".out.tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// CreateNew never replaces: a link, a file or a directory at the target
// makes it fail, with the target untouched.
func TestCreateNewRefusesAnExistingTarget(t *testing.T) {
	v := victim(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(v, link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateNew(link, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("link at the target: %v", err)
	}
	// A link planted between the start and the commit.
	late := filepath.Join(dir, "late")
	f, err := CreateNew(late, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("data"))
	if err := os.Symlink(v, late); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Error("commit replaced a link planted after the start")
	}
	untouched(t, v)
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	// Abort leaves nothing.
	g, err := CreateNew(filepath.Join(dir, "aborted"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	g.Abort()
	if m, _ := os.ReadDir(dir); len(m) != 2 {
		t.Errorf("after abort: %v", m)
	}
}

func mkfifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sparse is a file of size bytes that costs no disk.
func sparse(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("pw\n"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(ok, link)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("pw\n"), 0o644)
	foreign := filepath.Join(dir, "foreign")
	os.WriteFile(foreign, []byte("pw\n"), 0o600)
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	secret := ReadOptions{MaxBytes: MaxSecretBytes, NoLinks: true, OwnerOnly: true, Owners: []int{os.Geteuid(), 0}}
	cases := []struct {
		name, path string
		o          ReadOptions
		want       string
	}{
		{"fifo", mkfifo(t), secret, "named pipe (FIFO), not a regular file"},
		{"directory", dir, secret, "a directory, not a regular file"},
		{"device", "/dev/zero", ReadOptions{MaxBytes: 10}, "a device, not a regular file"},
		{"link", link, secret, "is a symbolic link"},
		{"200 MB", sparse(t, 200<<20), ReadOptions{MaxBytes: MaxConfigBytes}, "209715200 bytes, over the limit of 4194304"},
		{"group readable", open, secret, "readable by group or others"},
		{"foreign owner", foreign, secret, "owned by uid 65534"},
	}
	for _, tc := range cases {
		start := time.Now()
		_, err := Read(tc.path, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v, want %q naming the file", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: refused after %v", tc.name, d)
		}
	}
	if b, err := Read(ok, secret); err != nil || string(b) != "pw\n" {
		t.Errorf("a good secret: %q %v", b, err)
	}
	if b, err := ReadFile(link, 10); err != nil || string(b) != "pw\n" {
		t.Errorf("ReadFile follows links: %q %v", b, err)
	}
	// A file that reports no size is still bounded.
	if _, err := ReadFile("/proc/self/maps", 10); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("/proc file over the limit: %v", err)
	}
}
