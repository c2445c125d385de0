package deploy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDebLintian runs lintian on the amd64 .deb built by `make deb`: no
// error, no warning, and no stale override. The tags overridden on purpose
// are in deb/lintian-overrides, each with its reason.
func TestDebLintian(t *testing.T) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatalf("lintian: %v (deploy/deps.sh installs it)", err)
	}
	deb := buildDebAmd64(t)
	out, err := exec.Command("lintian", "--display-info", "--fail-on", "error,warning", deb).CombinedOutput()
	var findings []string
	for _, line := range strings.Split(string(out), "\n") {
		stale := strings.Contains(line, "unused-override") || strings.Contains(line, "mismatched-override")
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") || stale {
			findings = append(findings, line)
		}
	}
	if len(findings) > 0 {
		t.Fatalf("lintian %s: %d finding(s):\n%s\n\nlintian's output:\n%s", deb, len(findings), strings.Join(findings, "\n"), out)
	}
	if err != nil {
		t.Fatalf("lintian %s: %v\n%s", deb, err, out)
	}
	t.Logf("lintian %s: no error, no warning\n%s", deb, out)
}
