package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
)

// velo passwd: each credential line moves the stream password to the next
// generation with a new expiry; --rotate-stream does only that, for the
// same password (a wrong one is refused); --stream-password prints the
// current generation's password; the login and the command key stay the
// password's. config check warns about an old $velo1$ line.
func TestPasswdRotatesStreamPasswords(t *testing.T) {
	dir := t.TempDir()
	site := `site: {id: s, name: S, controller: C, purposes: [p]}
gateway: g
state_dir: state
outputs: {rtsp_listen: "127.0.0.1:1"}
operators:
  - {name: ops, password_file: ops.cred, roles: [live-viewer]}
`
	cfgPath := filepath.Join(dir, "site.yaml")
	cred := filepath.Join(dir, "ops.cred")
	for name, s := range map[string]string{"site.yaml": site, "ops.pw": "ops-secret-11\n", "wrong.pw": "not-the-secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	passwd := func(pwFile string, args ...string) (string, string, int) {
		return runCLI(t, append([]string{"passwd", "--config", cfgPath, "--operator", "ops", "--password-file", filepath.Join(dir, pwFile)}, args...)...)
	}
	stream := func(gen int) string { return access.StreamPassword("s", "ops", "ops-secret-11", gen) }
	check := func(step string, gen int, validFor time.Duration) {
		t.Helper()
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		c := cfg.Operator("ops").Credential()
		g, expires := c.Stream()
		if g != gen || expires.Sub(time.Now().Add(validFor)).Abs() > time.Minute {
			t.Errorf("%s: generation %d expiring %v, want %d in %v", step, g, expires, gen, validFor)
		}
		if _, err := cfg.Authenticate("ops", "ops-secret-11"); err != nil {
			t.Errorf("%s: login: %v", step, err)
		}
		if pub, err := cfg.Operator("ops").CommandPublicKey(); err != nil || !pub.Equal(access.CommandPrivateKey("s", "ops", "ops-secret-11").Public()) {
			t.Errorf("%s: command key: %v", step, err)
		}
		if so, se, code := passwd("ops.pw", "--stream-password"); code != 0 || strings.TrimSpace(so) != stream(gen) || !strings.Contains(se, fmt.Sprintf("generation %d", gen)) {
			t.Errorf("%s: --stream-password: %d %q %s", step, code, so, se)
		}
	}
	if _, se, code := passwd("ops.pw", "--out", cred); code != 0 || !strings.Contains(se, stream(1)) || !strings.Contains(se, "generation 1") {
		t.Fatalf("first credential: %d %s", code, se)
	}
	check("first", 1, 90*24*time.Hour)
	if _, se, code := passwd("ops.pw", "--rotate-stream", "--stream-days", "10", "--out", cred); code != 0 || !strings.Contains(se, stream(2)) {
		t.Fatalf("rotate: %d %s", code, se)
	}
	check("rotated", 2, 240*time.Hour)
	if _, se, code := passwd("wrong.pw", "--rotate-stream", "--out", cred); code != 1 || !strings.Contains(se, "does not match") {
		t.Errorf("rotate with another password: %d %s", code, se)
	}
	// Without --out, the current credential is the config's password_file.
	if _, se, code := passwd("wrong.pw", "--stream-password"); code != 1 || !strings.Contains(se, "does not match") {
		t.Errorf("--stream-password with another password: %d %s", code, se)
	}
	if _, se, code := passwd("ops.pw", "--out", cred); code != 0 || !strings.Contains(se, "generation 3") {
		t.Errorf("rewrite: %d %s", code, se)
	}
	check("rewritten", 3, 90*24*time.Hour)
	for _, bad := range []string{"0", "367"} {
		if _, se, code := passwd("ops.pw", "--stream-days", bad, "--out", cred); code != 2 || !strings.Contains(se, "--stream-days") {
			t.Errorf("--stream-days %s: %d %s", bad, code, se)
		}
	}
	es, err := audit.Show(filepath.Join(dir, "state", "audit"), audit.Filter{Action: "credential_set"})
	if err != nil || len(es) != 3 || es[1].Fields["stream_generation"] != "2" {
		t.Errorf("credential writes audited: %v %+v", err, es)
	}
	// An old $velo1$ line: config check warns, --rotate-stream refuses it.
	if err := os.WriteFile(cred, []byte(strings.Replace(oldCredentialLine, "$old$", "$ops$", 1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if so, se, code := runCLI(t, "config", "check", cfgPath); code != 0 || !strings.Contains(so, "OK (") || !strings.Contains(se, "$velo1$") ||
		!strings.Contains(se, "signed commands from this operator are refused") || !strings.Contains(se, "velo passwd") {
		t.Errorf("config check of an old line: %d %s %s", code, so, se)
	}
	if _, se, code := passwd("ops.pw", "--rotate-stream", "--out", cred); code != 1 || !strings.Contains(se, "not a current credential line") {
		t.Errorf("rotate an old line: %d %s", code, se)
	}
}
