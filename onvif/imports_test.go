package onvif_test

import (
	"os/exec"
	"strings"
	"testing"
)

// STYLE rule 9: onvif/ (and its simulator) never imports gocv or MQTT, and
// builds without cgo.
func TestOnvifImportsNeitherGocvNorMQTT(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "velo/onvif", "velo/onvif/camsim").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("implausible dependency list: %q", deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"gocv.io/", "github.com/eclipse/paho", "mochi-mqtt", "github.com/use-go/onvif"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("onvif depends on %s", d)
			}
		}
	}
	cmd := exec.Command("go", "build", "-o", "/dev/null", "velo/onvif", "velo/onvif/camsim")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("onvif does not build with CGO_ENABLED=0: %v\n%s", err, out)
	}
}

// STYLE rule 13: one package doc per package.
func TestEveryPackageHasDoc(t *testing.T) {
	// stdout only: go list warns on stderr about symlinks under build/
	// (the arm64 sysroot).
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "velo/...").Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d packages listed", len(lines))
	}
	for _, l := range lines {
		path, doc, _ := strings.Cut(l, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no doc comment", path)
		}
	}
}
