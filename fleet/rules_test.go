package fleet

import (
	"os/exec"
	"strings"
	"testing"
)

// The shipped alert rules are valid and do what velo-rules.test.yml says
// (promtool from Debian's prometheus package: make deps installs it).
func TestAlertRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool not installed (make deps installs the prometheus package)")
	}
	for _, args := range [][]string{
		{"check", "rules", "velo-rules.yml"},
		{"test", "rules", "velo-rules.test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "../deploy/prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
