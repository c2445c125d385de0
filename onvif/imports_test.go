package onvif_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Imports point down (docs/architecture.md): each package below must not
// link (directly or through its dependencies) any package listed against
// it, nor anything under one. To cover another package, add one row.
func TestImportsPointDown(t *testing.T) {
	// heavy is what only the agent and the frame path may link: MQTT
	// (client and broker) and OpenCV. No shipped package links the test
	// helpers.
	heavy := []string{
		"github.com/eclipse/paho.mqtt.golang",
		"github.com/mochi-mqtt/server/v2",
		"gocv.io/x/gocv",
		"velo/internal/testkit",
	}
	// onvifSide is the ONVIF client and the simulator: none of the frame
	// path, and not the third-party ONVIF library we only compare against.
	onvifSide := append([]string{"velo/masking", "github.com/use-go/onvif"}, heavy...)
	cases := []struct {
		pkg       string
		forbidden []string
	}{
		{"velo/onvif", onvifSide},
		{"velo/onvif/camsim", onvifSide},
		{"velo/cmd/camsim", onvifSide},
		{"velo/agent/audit", heavy},
		{"velo/agent/retention", heavy},
		{"velo/agent/recserve", heavy},
		{"velo/agent/config", heavy},
		{"velo/agent/access", heavy},
		{"velo/agent/dossier", heavy},
		{"velo/agent/event", heavy},
		{"velo/agent/commands", heavy},
		{"velo/agent/ptzlock", heavy},
		{"velo/agent/console", heavy}, // pictures come through its Gateway, from the frame path
		{"velo/masking/maskspec", heavy},
		// The central fleet view: MQTT client yes; no OpenCV, no frame path, no broker.
		{"velo/fleet", []string{"gocv.io/x/gocv", "velo/masking", "github.com/mochi-mqtt/server/v2", "velo/agent/telemetry", "velo/internal/testkit"}},
		{"velo/masking/anonymise/spec", heavy},
		{"velo/masking/codec", heavy},
		{"velo/masking/gstapp", heavy}, // cgo over GStreamer alone: no OpenCV
	}
	for _, tc := range cases {
		t.Run(tc.pkg, func(t *testing.T) {
			t.Parallel()
			for _, dep := range goListDeps(t, tc.pkg) {
				for _, f := range tc.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s links %s (forbidden: %s)", tc.pkg, dep, f)
					}
				}
			}
		})
	}
}

// goListDeps is every package pkg links (test files excluded), pkg
// included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	// stdout only: go list warns on stderr about symlinks under build/
	// (the arm64 sysroot).
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 || deps[len(deps)-1] != pkg {
		t.Fatalf("implausible dependency list for %s: %q", pkg, deps)
	}
	return deps
}

// The ONVIF client and the simulator build without cgo (only masking/
// needs it, for OpenCV).
func TestOnvifBuildsWithoutCgo(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", "/dev/null", "velo/onvif", "velo/onvif/camsim", "velo/cmd/camsim")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("does not build with CGO_ENABLED=0: %v\n%s", err, out)
	}
}

// One package doc per package.
func TestEveryPackageHasDoc(t *testing.T) {
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
