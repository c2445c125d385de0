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
// self-test on a generated frame, which must pass with OpenCV 4.6 on arm64
// and report the codec elements it found (the sysroot has no GStreamer
// codec plugins: the codec check alone may fail there).
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
	// stdout only: the codec probe's failed pipelines make OpenCV warn on
	// stderr.
	c := exec.Command("bash", filepath.Join(root, "deploy/arm64/qemu.sh"), bin, "mask", "selftest", "--json", "--config", filepath.Join(demo, "site.yaml"))
	so, err := c.Output()
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
		Codecs struct {
			Elements []struct {
				Name, Codec, Role, Detail string
				OK                        bool
			} `json:"elements"`
		} `json:"codecs"`
	}
	if jerr := json.Unmarshal(so, &rep); jerr != nil {
		t.Fatalf("mask selftest under qemu: %v, %v: %s", err, jerr, so)
	}
	// The sysroot carries OpenCV's libraries, not GStreamer's codec
	// plugins, so under qemu the codec check may fail alone; it must
	// report every element of the table with what it found.
	var failed, found []string
	for _, c := range rep.Checks {
		if !c.OK && !strings.HasPrefix(c.Name, "codecs:") {
			failed = append(failed, c.Name)
		}
	}
	for _, e := range rep.Codecs.Elements {
		if e.OK {
			found = append(found, e.Codec+" "+e.Role+" "+e.Name)
		}
		if e.Name == "" || e.Detail == "" {
			t.Errorf("codec element reported without name or detail: %+v", e)
		}
	}
	if len(failed) > 0 || rep.Arch != "arm64" || rep.OpenCV != "4.6.0" || len(rep.Checks) < 20 || len(rep.Codecs.Elements) < 20 {
		t.Errorf("selftest: exit %v, failed %v, arch %q, OpenCV %q, %d checks, %d codec elements", err, failed, rep.Arch, rep.OpenCV, len(rep.Checks), len(rep.Codecs.Elements))
	}
	t.Logf("FIGURES arm64 codec elements working under qemu: %d of %d %v", len(found), len(rep.Codecs.Elements), found)
	t.Logf("FIGURES arm64 mask selftest under qemu: %d checks passed, %.0f ms inside, %.1f s wall", len(rep.Checks), rep.TookMS, time.Since(t1).Seconds())
}
