package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"velo/internal/testkit"
)

// G-3.3.1 a, d: roles that both move cameras and show video sit on one
// operator only with a stated reason; G-3.3.2: a password file hard-linked
// under another name is still a shared one.
func TestG331_OperatorsKeptApart(t *testing.T) {
	both := strings.Replace(testkit.SiteYAML, "    roles: [live-viewer]\n", "    roles: [live-viewer, ptz-maintainer]\n    combined_roles_reason: one guard on the night shift\n", 1)
	c, err := Load(testkit.WriteSite(t, both))
	if err != nil {
		t.Fatalf("a stated reason is refused: %v", err)
	}
	if c.Operators[0].CombinedRolesReason != "one guard on the night shift" {
		t.Errorf("reason %q", c.Operators[0].CombinedRolesReason)
	}
	blank := strings.Replace(both, "one guard on the night shift", `" "`, 1)
	if _, err := Load(testkit.WriteSite(t, blank)); err == nil || !strings.Contains(err.Error(), "operators[0].roles") {
		t.Errorf("a blank reason: %v", err)
	}
	// Separate roles on separate operators need no reason.
	apart := strings.Replace(testkit.SiteYAML, "    cameras: [cam1]\ncameras:", "    cameras: [cam1]\n  - {name: maint, password_file: maint.pw, roles: [ptz-maintainer], cameras: [cam1]}\ncameras:", 1)
	p := testkit.WriteSite(t, apart)
	testkit.SecretFile(t, filepath.Dir(p), "maint.pw", "maint-secret\n")
	if _, err := Load(p); err != nil {
		t.Fatalf("separate operators: %v", err)
	}
	// The maintainer's file as a hard link to the viewer's: refused.
	if err := os.Remove(filepath.Join(filepath.Dir(p), "maint.pw")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(filepath.Dir(p), "ops.pw"), filepath.Join(filepath.Dir(p), "maint.pw")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), "operators[") || !strings.Contains(err.Error(), "same file as") || strings.Contains(err.Error(), testkit.OperatorPassword) {
		t.Errorf("hard-linked password file: %v", err)
	}
}
