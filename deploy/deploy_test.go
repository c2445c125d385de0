package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// The amd64 .deb: built from a fresh velo binary, unpacked into a throw-away
// root with dpkg --root, checked for files, modes, conffiles and Depends;
// its example config passes `velo config check`; its unit passes
// `systemd-analyze verify` with no warning.
func TestDebAmd64(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "velo")
	run(t, "go", "build", "-o", bin, "../cmd/velo")
	deb := strings.TrimSpace(run(t, "bash", "deb/build.sh", "amd64", bin))
	deb = filepath.Join("..", deb)
	defer os.Remove(deb)
	if !strings.HasPrefix(filepath.Base(deb), "velo_") || !strings.HasSuffix(deb, "_amd64.deb") {
		t.Fatalf("package name %s", deb)
	}
	info := run(t, "dpkg-deb", "--info", deb)
	for _, dep := range []string{"libopencv-videoio406", "libopencv-core406", "gstreamer1.0-plugins-ugly", "gstreamer1.0-libav", "ffmpeg", "adduser"} {
		if !strings.Contains(info, dep) {
			t.Errorf("Depends lacks %s:\n%s", dep, info)
		}
	}
	if strings.Contains(info, "-dev") {
		t.Errorf("depends on a -dev package:\n%s", info)
	}

	// Install (unpack) into a throw-away root; maintainer scripts are not
	// run there (they act on the host's users).
	root := filepath.Join(dir, "root")
	for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "dpkg", "--root="+root, "--force-depends", "--force-not-root", "--unpack", deb)
	status := run(t, "dpkg", "--root="+root, "-s", "velo")
	if !strings.Contains(status, "Status: install ok unpacked") || !strings.Contains(status, "/etc/velo/site.yaml") {
		t.Errorf("dpkg status:\n%s", status)
	}
	// Unpacked, not configured: the conffile waits as .dpkg-new.
	modes := map[string]os.FileMode{"usr/bin/velo": 0o755, "etc/velo/site.yaml.dpkg-new": 0o640, "lib/systemd/system/velo.service": 0o644,
		"usr/share/doc/velo/mosquitto/issue-cert.sh": 0o755}
	for f, want := range modes {
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", f, st.Mode().Perm(), want)
		}
	}
	for _, script := range []string{"postinst", "postrm"} {
		p := filepath.Join(root, "var/lib/dpkg/info/velo."+script)
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s missing or not executable", script)
		}
		run(t, "sh", "-n", p)
	}
	out := run(t, filepath.Join(root, "usr/bin/velo"), "config", "check", filepath.Join(root, "etc/velo/site.yaml.dpkg-new"))
	if !strings.Contains(out, "OK") {
		t.Errorf("config check: %s", out)
	}

	// The unit, with ExecStart pointing at the unpacked binary.
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/velo.service"))
	for _, want := range []string{"Type=notify", "WatchdogSec=", "User=velo", "StateDirectory=velo", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	udir := filepath.Join(dir, "unit")
	os.MkdirAll(udir, 0o755)
	local := filepath.Join(udir, "velo.service")
	os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), "/usr/bin/velo", filepath.Join(root, "usr/bin/velo"))), 0o644)
	if out, err := exec.Command("systemd-analyze", "verify", local).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command("systemd-analyze", "security", "--offline=yes", local).CombinedOutput(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("FIGURES %s", lines[len(lines)-1])
	}
	// The check above catches a bad unit.
	os.WriteFile(local, []byte(strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=stricter", 1)), 0o644)
	if out, _ := exec.Command("systemd-analyze", "verify", local).CombinedOutput(); len(out) == 0 {
		t.Error("systemd-analyze verify accepted a broken unit")
	}
}
