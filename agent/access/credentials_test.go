package access_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"velo/agent/access"
	"velo/agent/config"
	"velo/internal/testkit"
)

const pass = "Correct-Horse-42"

// loadWithCredential loads the test site with operator ops's password file
// holding line.
func loadWithCredential(t *testing.T, line string) (*config.Config, error) {
	t.Helper()
	text := strings.Replace(testkit.SiteYAML, "password_file: ops.pw", "password_file: ops.cred", 1)
	p := testkit.WriteSite(t, text)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Load(p)
}

// G-3.3.1 a, ER-4.3: operator passwords are stored as a slow hash. The
// credential file authenticates the CLI, verifies signed commands and RTSP
// digest, holds nothing that is the password or a fast hash of it, and is
// bound to its site and operator.
func TestG331_HashedCredentials(t *testing.T) {
	expires := time.Now().Add(30 * 24 * time.Hour)
	line := access.HashCredential("test-site", "ops", pass, 3, expires)
	if strings.Contains(line, pass) || !access.IsHashed(line) || !strings.HasPrefix(line, "$velo2$test-site$ops$") {
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
	cfg, err := loadWithCredential(t, line)
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
	pub, err := op.CommandPublicKey()
	if err != nil || !pub.Equal(access.CommandPrivateKey("test-site", "ops", pass).Public()) {
		t.Errorf("command public key differs from the sender's: %v", err)
	}
	ha1, _, err := op.Credential().StreamHA1(time.Now())
	sp := access.StreamPassword("test-site", "ops", pass, 3)
	if err != nil || ha1 != md5hex("ops:"+access.RTSPRealm+":"+sp) || len(sp) != 24 {
		t.Errorf("stream HA1 %q for stream password %q: %v", ha1, sp, err)
	}
	if gen, exp := op.Credential().Stream(); gen != 3 || !exp.Equal(expires.Truncate(time.Second)) {
		t.Errorf("stream generation %d expiry %v, want 3 and %v", gen, exp, expires)
	}
	// Bound to site and operator; malformed lines are refused naming the file.
	fields := strings.Split(line, "$")
	with := func(i int, v string) string {
		f := append([]string(nil), fields...)
		f[i] = v
		return strings.Join(f, "$")
	}
	for _, tc := range []struct{ content, want string }{
		{access.HashCredential("other-site", "ops", pass, 1, expires), `made for site "other-site"`},
		{access.HashCredential("test-site", "admin", pass, 1, expires), `operator "admin"`},
		{strings.TrimSuffix(line, line[len(line)-8:]), "malformed"},
		{"$velo2$test-site$ops$zz", "malformed"},
		{"$velo1$test-site$ops$zz", "malformed"},
		{with(6, "0"), "stream generation"},
		{with(6, "-2"), "stream generation"},
		{with(7, "2027-13-01"), "stream expiry"},
		{with(5, "ab"), "malformed credential field 4"},
	} {
		_, err := loadWithCredential(t, tc.content)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "operators[0].password_file") || !strings.Contains(err.Error(), "ops.cred") {
			t.Errorf("%q: %v", tc.content, err)
		}
	}
	// A plaintext file still works for the CLI, with a warning naming the
	// fix, but verifies no command: the gateway would hold the password.
	cfg, err = config.Load(testkit.WriteSite(t, testkit.SiteYAML))
	if err != nil {
		t.Fatal(err)
	}
	if ws := operatorWarnings(cfg); len(ws) != 1 || !strings.Contains(ws[0], "plaintext") || !strings.Contains(ws[0], "velo passwd") || !strings.Contains(ws[0], "commands") {
		t.Errorf("warnings %v", ws)
	}
	if _, err := cfg.Authenticate("ops", testkit.OperatorPassword); err != nil {
		t.Error(err)
	}
	if _, err := cfg.Operator("ops").CommandPublicKey(); err == nil || !strings.Contains(err.Error(), "ops.pw") || !strings.Contains(err.Error(), "plaintext") || !strings.Contains(err.Error(), "velo passwd") {
		t.Errorf("plaintext file as a command key: %v", err)
	}
}

// An old $velo1$ line (it held the command MAC key, so reading it was
// enough to sign commands) still logs the operator in and serves its
// never-expiring stream password, but verifies no command; config check
// says so, naming the file and the fix.
func TestOldCredentialLineVerifiesNoCommand(t *testing.T) {
	line := legacyLine("test-site", "ops", pass)
	cfg, err := loadWithCredential(t, line)
	if err != nil {
		t.Fatal(err)
	}
	if ws := operatorWarnings(cfg); len(ws) != 1 || !strings.Contains(ws[0], "ops.cred") || !strings.Contains(ws[0], "$velo1$") ||
		!strings.Contains(ws[0], "commands") || !strings.Contains(ws[0], "velo passwd") {
		t.Errorf("warnings %v", ws)
	}
	if _, err := cfg.Authenticate("ops", pass); err != nil {
		t.Errorf("old line: right password refused: %v", err)
	}
	op := cfg.Operator("ops")
	if _, err := op.CommandPublicKey(); err == nil || !strings.Contains(err.Error(), "operators[0].password_file ops.cred") || !strings.Contains(err.Error(), "re-run velo passwd") {
		t.Errorf("old line as a command key: %v", err)
	}
	ha1, _, err := op.Credential().StreamHA1(time.Now().Add(100 * 365 * 24 * time.Hour))
	sp := access.StreamPassword("test-site", "ops", pass, access.LegacyStreamGeneration)
	if err != nil || ha1 != md5hex("ops:"+access.RTSPRealm+":"+sp) {
		t.Errorf("old line's stream HA1 %q: %v", ha1, err)
	}
}

// RTSP digest needs a password-equivalent HA1 on the gateway, so stream
// passwords expire and rotate: an expired one is refused at the lookup
// (and config check says so), one about to expire is warned about, and
// each generation is a different password whose HA1 reveals no other.
func TestStreamPasswordsExpireAndRotate(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name    string
		expires time.Time
		warn    string
		expired bool
	}{
		{"expired", now.Add(-time.Hour), "expired at", true},
		{"expiring", now.Add(3 * 24 * time.Hour), "(in 3.0 days)", false},
		{"fresh", now.Add(30 * 24 * time.Hour), "", false},
	} {
		cfg, err := loadWithCredential(t, access.HashCredential("test-site", "ops", pass, 1, tc.expires))
		if err != nil {
			t.Fatal(err)
		}
		switch ws := operatorWarnings(cfg); {
		case tc.warn == "" && len(ws) != 0:
			t.Errorf("%s: warnings %v", tc.name, ws)
		case tc.warn != "" && (len(ws) != 1 || !strings.Contains(ws[0], tc.warn) ||
			!strings.Contains(ws[0], "--rotate-stream") || !strings.Contains(ws[0], "ops.cred")):
			t.Errorf("%s: warnings %v", tc.name, ws)
		}
		_, _, err = cfg.Operator("ops").Credential().StreamHA1(now)
		if got := errors.Is(err, access.ErrStreamExpired); got != tc.expired {
			t.Errorf("%s: StreamHA1 error %v", tc.name, err)
		}
	}
	// The check is at lookup time: a credential loaded while valid is
	// refused once its expiry passes, without a reload.
	cfg, err := loadWithCredential(t, access.HashCredential("test-site", "ops", pass, 1, now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cfg.Operator("ops").Credential().StreamHA1(now.Add(time.Hour + time.Second)); !errors.Is(err, access.ErrStreamExpired) {
		t.Errorf("after expiry: %v", err)
	}
	seen := map[string]bool{}
	for gen := range 4 {
		sp := access.StreamPassword("test-site", "ops", pass, gen)
		if seen[sp] {
			t.Errorf("generation %d repeats a stream password", gen)
		}
		seen[sp] = true
	}
}

// legacyLine is a $velo1$ line as earlier versions of velo passwd wrote it.
func legacyLine(site, operator, password string) string {
	k, err := pbkdf2.Key(sha256.New, password, []byte("velo-operator-v1\x00"+site+"\x00"+operator), access.KDFIterations, 32)
	if err != nil {
		panic(err)
	}
	m := func(what string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(what))
		return h.Sum(nil)
	}
	sp := hex.EncodeToString(m("rtsp"))[:24]
	sh := sha256.Sum256([]byte(operator + ":" + access.RTSPRealm + ":" + sp))
	return "$velo1$" + strings.Join([]string{site, operator, hex.EncodeToString(m("verify")), hex.EncodeToString(m("command")),
		md5hex(operator + ":" + access.RTSPRealm + ":" + sp), hex.EncodeToString(sh[:])}, "$")
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
