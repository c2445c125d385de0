package deploy

import (
	"fmt"
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

// buildDebAmd64 builds the amd64 .deb as a user does with `make deb` (a
// stripped PIE velo, then deploy/deb/build.sh), with the binaries in a
// temporary BIN, and moves the package out of build/deb into a temporary
// directory, whose path it returns.
func buildDebAmd64(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "-s", "--no-print-directory", "deb", "ARCH=amd64", "BIN="+filepath.Join(dir, "bin"))
	cmd.Dir = ".."
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make deb: %v\n%s%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	built := filepath.Join("..", lines[len(lines)-1])
	deb := filepath.Join(dir, filepath.Base(built))
	if err := os.Rename(built, deb); err != nil {
		t.Fatalf("make deb printed %q: %v\n%s", built, err, out)
	}
	return deb
}

// The amd64 .deb: built by `make deb`, unpacked into a throw-away
// root with dpkg --root, checked for files, modes, conffiles and Depends;
// its example config passes `velo config check`; its unit passes
// `systemd-analyze verify` with no warning.
func TestDebAmd64(t *testing.T) {
	dir := t.TempDir()
	deb := buildDebAmd64(t)
	if !strings.HasPrefix(filepath.Base(deb), "velo_") || !strings.HasSuffix(deb, "_amd64.deb") {
		t.Fatalf("package name %s", deb)
	}
	info := run(t, "dpkg-deb", "--info", deb)
	for _, dep := range []string{"libopencv-videoio406", "libopencv-core406", "gstreamer1.0-plugins-ugly", "gstreamer1.0-libav", "ffmpeg", "adduser", "fonts-dejavu-core"} {
		if !strings.Contains(info, dep) {
			t.Errorf("Depends lacks %s:\n%s", dep, info)
		}
	}
	if strings.Contains(info, "-dev") {
		t.Errorf("depends on a -dev package:\n%s", info)
	}

	// Unpack into a throw-away root (maintainer scripts run in the
	// subtest below, in an overlay root).
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
		"usr/share/doc/velo/mosquitto/issue-cert.sh": 0o755, "usr/share/doc/velo/copyright": 0o644,
		"usr/share/doc/velo/changelog.Debian.gz": 0o644, "usr/share/man/man1/velo.1.gz": 0o644}
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
	t.Run("maintainer scripts", func(t *testing.T) { maintainerScripts(t, deb) })
	// The check above catches a bad unit.
	os.WriteFile(local, []byte(strings.Replace(string(unit), "ProtectSystem=strict", "ProtectSystem=stricter", 1)), 0o644)
	if out, _ := exec.Command("systemd-analyze", "verify", local).CombinedOutput(); len(out) == 0 {
		t.Error("systemd-analyze verify accepted a broken unit")
	}
}

// maintainerScripts installs the .deb for real with dpkg -i (so postinst
// runs), reconfigures, upgrades over an edited conffile, removes and purges
// it, inside a throw-away root: an overlay of the host's / on a tmpfs, in a
// private mount namespace, chrooted. Nothing reaches the host: the overlay
// and its tmpfs vanish with the namespace (the test checks the host has no
// velo user afterwards, unless it had one before).
func maintainerScripts(t *testing.T, deb string) {
	abs, err := filepath.Abs(deb)
	if err != nil {
		t.Fatal(err)
	}
	_, hadUser := exec.Command("getent", "passwd", "velo").Output()
	top := t.TempDir()
	script := `set -eu
st() { stat -c '%n %U:%G %a' "$@"; }
echo "== install"
dpkg -i ` + abs + ` >/dev/null
getent passwd velo | cut -d: -f1,6,7
st /var/lib/velo /etc/velo /etc/velo/site.yaml /usr/bin/velo
echo "== run as velo"
runuser -u velo -- /usr/bin/velo config check /etc/velo/site.yaml
runuser -u velo -- sh -c 'cat /etc/velo/site.yaml >/dev/null && touch /var/lib/velo/w && echo state-writable'
echo "== secret fixed on reconfigure"
echo s3cret > /etc/velo/cam.password; chmod 0644 /etc/velo/cam.password
dpkg-reconfigure velo >/dev/null 2>&1 || /var/lib/dpkg/info/velo.postinst configure
st /etc/velo/cam.password
echo "== upgrade keeps an edited conffile"
sed -i 's/^# edited-marker//; 1i # edited-by-installer' /etc/velo/site.yaml
dpkg -i --force-confold ` + abs + ` >/dev/null
head -1 /etc/velo/site.yaml
echo "== remove"
dpkg -r velo >/dev/null
test -e /usr/bin/velo && echo binary-left || echo binary-gone
test -e /etc/velo/site.yaml && echo conffile-kept || echo conffile-gone
getent passwd velo >/dev/null && echo user-kept || echo user-gone
echo "== purge"
dpkg -P velo >/dev/null
test -e /etc/velo/site.yaml && echo conffile-left || echo conffile-gone
test -e /var/lib/velo && echo state-left || echo state-gone
getent passwd velo >/dev/null && echo user-left || echo user-gone
`
	if err := os.WriteFile(filepath.Join(top, "script.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(top, "m")
	os.MkdirAll(m, 0o755)
	outer := fmt.Sprintf(`set -e
mount -t tmpfs tmpfs %[1]s/up 2>/dev/null || { mkdir -p %[1]s/up; mount -t tmpfs tmpfs %[1]s/up; }
mkdir -p %[1]s/up/u %[1]s/up/w
mount -t overlay overlay -o lowerdir=/,upperdir=%[1]s/up/u,workdir=%[1]s/up/w %[1]s/m
mount -t proc proc %[1]s/m/proc
mount --bind /dev %[1]s/m/dev
mount -t tmpfs tmpfs %[1]s/m/run
exec chroot %[1]s/m sh %[1]s/script.sh`, top)
	os.MkdirAll(filepath.Join(top, "up"), 0o755)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "--fork", "--pid", "sh", "-c", outer).CombinedOutput()
	t.Logf("throw-away root:\n%s", out)
	if err != nil {
		t.Fatalf("maintainer scripts: %v", err)
	}
	got := string(out)
	for _, want := range []string{
		"velo:/var/lib/velo:/usr/sbin/nologin",
		"/var/lib/velo velo:velo 700",
		"/etc/velo root:velo 750",
		"/etc/velo/site.yaml root:velo 640",
		"/usr/bin/velo root:root 755",
		"state-writable",
		"/etc/velo/cam.password velo:velo 600",
		"# edited-by-installer",
		"== remove\nbinary-gone\nconffile-kept\nuser-kept",
		"== purge\nconffile-gone\nstate-gone\nuser-gone",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("throw-away root: no %q", want)
		}
	}
	if !strings.Contains(got, "OK") {
		t.Error("velo config check as the velo user did not print OK")
	}
	if _, err := exec.Command("getent", "passwd", "velo").Output(); (err == nil) != (hadUser == nil) {
		t.Error("the host's users changed")
	}
	if _, err := os.Stat("/var/lib/dpkg/info/velo.list"); err == nil && hadUser != nil {
		t.Error("velo is registered in the host's dpkg")
	}
}
