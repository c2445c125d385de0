package agent

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// G-3.3.1 a, ER-4.3: operator passwords are stored as a slow hash. The
// credential file authenticates the CLI, signed commands and RTSP digest,
// holds nothing that is the password or a fast hash of it, and is bound to
// its site and operator.
func TestG331_HashedCredentials(t *testing.T) {
	const pass = "Correct-Horse-42"
	line := HashCredential("test-site", "ops", pass)
	if strings.Contains(line, pass) || !isHashed(line) {
		t.Fatalf("credential %q", line)
	}
	// No field is a fast hash of the password (MD5/SHA-256 of it, or the
	// HA1 of the password itself rather than of the derived stream
	// password).
	for _, fast := range []string{md5hex(pass), md5hex("ops:" + RTSPRealm + ":" + pass)} {
		if strings.Contains(line, fast) {
			t.Errorf("credential contains a fast hash of the password")
		}
	}
	text := strings.Replace(goodConfig, "password_file: ops.pw", "password_file: ops.cred", 1)
	p := writeConfig(t, text)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings for a hashed credential: %v", cfg.Warnings)
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
	if string(op.commandKey()) != string(CommandKey("test-site", "ops", pass)) {
		t.Error("command key differs from the sender's")
	}
	sec := op.streamSecret()
	sp := StreamPassword("test-site", "ops", pass)
	if sec.Password != "" || sec.HA1MD5 != md5hex("ops:"+RTSPRealm+":"+sp) || len(sp) != 24 {
		t.Errorf("stream secret %+v for stream password %q", sec, sp)
	}
	// Bound to site and operator; malformed lines are refused naming the file.
	for _, tc := range []struct{ content, want string }{
		{HashCredential("other-site", "ops", pass), `made for site "other-site"`},
		{HashCredential("test-site", "admin", pass), `operator "admin"`},
		{strings.TrimSuffix(line, line[len(line)-8:]), "malformed"},
		{"$velo1$test-site$ops$zz", "malformed"},
	} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(tc.content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "operators[0].password_file") || !strings.Contains(err.Error(), "ops.cred") {
			t.Errorf("%q: %v", tc.content, err)
		}
	}
	// A plaintext file still works, with a warning naming the fix.
	cfg, err = Load(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "plaintext") || !strings.Contains(cfg.Warnings[0], "velo passwd") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	if _, err := cfg.Authenticate("ops", "op-secret"); err != nil {
		t.Error(err)
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
