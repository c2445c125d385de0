package deploy

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArm64UnderQemu cross-builds velo for arm64 against the sysroot
// assembled from Debian's arm64 packages (deploy/arm64), checks it is an
// aarch64 ELF, and runs it under qemu-aarch64: version, config check on the
// packaged example (and a broken copy, which must fail), and the masking
// self-test on a generated frame, which must pass with OpenCV 4.6 on arm64.
func TestArm64UnderQemu(t *testing.T) {
	root, _ := filepath.Abs("..")
	t0 := time.Now()
	cmd := exec.Command("bash", "deploy/arm64/build.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=0.0-arm64test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/arm64/build.sh: %v\n%s", err, out)
	}
	t.Logf("FIGURES arm64 sysroot + cross-build: %.1f s", time.Since(t0).Seconds())
	bin := filepath.Join(root, "build/arm64/velo")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	machine := f.Machine
	f.Close()
	if machine != elf.EM_AARCH64 {
		t.Fatalf("%s is %v, not aarch64", bin, machine)
	}
	qemu := func(args ...string) (string, error) {
		c := exec.Command("bash", append([]string{filepath.Join(root, "deploy/arm64/qemu.sh"), bin}, args...)...)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := qemu("version")
	if err != nil || strings.TrimSpace(out) != "velo 0.0-arm64test" {
		t.Errorf("version: %v %q", err, out)
	}
	example := filepath.Join(root, "deploy/deb/site.yaml")
	if out, err := qemu("config", "check", example); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("config check %s: %v\n%s", example, err, out)
	}
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "site.yaml")
	os.WriteFile(broken, append(data, []byte("\nnot_a_field: 1\n")...), 0o600)
	if out, err := qemu("config", "check", broken); err == nil || !strings.Contains(out, "not_a_field") {
		t.Errorf("broken config passed under qemu: %v\n%s", err, out)
	}

	t1 := time.Now()
	// The demo config with its password files at 0600 (a checkout leaves
	// them 0644, which the loader refuses).
	demo := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(root, "deploy/demo/*.password"))
	creds, _ := filepath.Glob(filepath.Join(root, "deploy/demo/*.cred"))
	for _, f := range append(append(files, creds...), filepath.Join(root, "deploy/demo/site.yaml")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(demo, filepath.Base(f)), b, 0o600)
	}
	out, err = qemu("mask", "selftest", "--json", "--config", filepath.Join(demo, "site.yaml"))
	if err != nil {
		t.Fatalf("mask selftest under qemu: %v\n%s", err, out)
	}
	var rep struct {
		OK     bool    `json:"ok"`
		Arch   string  `json:"arch"`
		OpenCV string  `json:"opencv"`
		Failed int     `json:"failed"`
		TookMS float64 `json:"took_ms"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !rep.OK || rep.Failed != 0 || rep.Arch != "arm64" || rep.OpenCV != "4.6.0" || len(rep.Checks) < 20 {
		t.Errorf("selftest: ok %v, failed %d, arch %q, OpenCV %q, %d checks", rep.OK, rep.Failed, rep.Arch, rep.OpenCV, len(rep.Checks))
	}
	t.Logf("FIGURES arm64 mask selftest under qemu: %d checks passed, %.0f ms inside, %.1f s wall", len(rep.Checks), rep.TookMS, time.Since(t1).Seconds())
}
