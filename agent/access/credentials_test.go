package access_test

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"velo/agent/access"
	"velo/agent/config"
	"velo/internal/testkit"
)

// G-3.3.1 a, ER-4.3: operator passwords are stored as a slow hash. The
// credential file authenticates the CLI, signed commands and RTSP digest,
// holds nothing that is the password or a fast hash of it, and is bound to
// its site and operator.
func TestG331_HashedCredentials(t *testing.T) {
	const pass = "Correct-Horse-42"
	line := access.HashCredential("test-site", "ops", pass)
	if strings.Contains(line, pass) || !access.IsHashed(line) {
		t.Fatalf("credential %q", line)
	}
	// No field is a fast hash of the password (MD5/SHA-256 of it, or the
	// HA1 of the password itself rather than of the derived stream
	// password).
	for _, fast := range []string{md5hex(pass), md5hex("ops:" + access.RTSPRealm + ":" + pass)} {
		if strings.Contains(line, fast) {
			t.Errorf("credential contains a fast hash of the password")
		}
	}
	text := strings.Replace(testkit.SiteYAML, "password_file: ops.pw", "password_file: ops.cred", 1)
	p := testkit.WriteSite(t, text)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if ws := operatorWarnings(cfg); len(ws) != 0 {
		t.Errorf("warnings for a hashed credential: %v", ws)
	}
	if _, err := cfg.Authenticate("ops", pass); err != nil {
		t.Errorf("right password refused: %v", err)
	}
	for _, wrong := range []string{"", "correct-horse-42", pass + " ", line} {
		if _, err := cfg.Authenticate("ops", wrong); err == nil {
			t.Errorf("wrong password %q accepted", wrong)
		}
	}
	op := cfg.Operator("ops")
	if string(op.Credential().CommandKey()) != string(access.CommandKey("test-site", "ops", pass)) {
		t.Error("command key differs from the sender's")
	}
	ha1, _ := op.Credential().StreamHA1()
	sp := access.StreamPassword("test-site", "ops", pass)
	if ha1 != md5hex("ops:"+access.RTSPRealm+":"+sp) || len(sp) != 24 {
		t.Errorf("stream HA1 %q for stream password %q", ha1, sp)
	}
	// Bound to site and operator; malformed lines are refused naming the file.
	for _, tc := range []struct{ content, want string }{
		{access.HashCredential("other-site", "ops", pass), `made for site "other-site"`},
		{access.HashCredential("test-site", "admin", pass), `operator "admin"`},
		{strings.TrimSuffix(line, line[len(line)-8:]), "malformed"},
		{"$velo1$test-site$ops$zz", "malformed"},
	} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(tc.content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "operators[0].password_file") || !strings.Contains(err.Error(), "ops.cred") {
			t.Errorf("%q: %v", tc.content, err)
		}
	}
	// A plaintext file still works, with a warning naming the fix.
	cfg, err = config.Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	if ws := operatorWarnings(cfg); len(ws) != 1 || !strings.Contains(ws[0], "plaintext") || !strings.Contains(ws[0], "velo passwd") {
		t.Errorf("warnings %v", ws)
	}
	if _, err := cfg.Authenticate("ops", testkit.OperatorPassword); err != nil {
		t.Error(err)
	}
}

// operatorWarnings are the config's warnings about operators.
func operatorWarnings(cfg *config.Config) []string {
	var ws []string
	for _, w := range cfg.Warnings {
		if strings.HasPrefix(w, "operators[") {
			ws = append(ws, w)
		}
	}
	return ws
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
