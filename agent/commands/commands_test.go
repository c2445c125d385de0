package commands_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"velo/agent/access"
	"velo/agent/commands"
	"velo/agent/config"
	"velo/internal/testkit"
)

const pass = "Correct-Horse-42"

// legacyLine is the $velo1$ line earlier versions of velo passwd wrote for
// operator ops of test-site with password pass (its fourth field is the
// command MAC key those versions verified commands with).
const legacyLine = "$velo1$test-site$ops$83fcb698b0b3c81096b7175b1429de4ee4ffa5da8201db6fc2403cdb90f22cfd$4c8fc1fc81f5a867a9f781d81117857fbf614264d430e2773c45d3be776567ea$8469c4afc20ebf2b82276c848d1c7a13$4b2c831619a4fdfa8cdb9259a2078520e84407730f6d9ef6b96a0f22c7b4c93a"

// siteWithCredential loads the test site with operator ops whose password
// file holds line.
func siteWithCredential(t *testing.T, line string) *config.Config {
	t.Helper()
	p := testkit.WriteSite(t, strings.Replace(testkit.SiteYAML, "password_file: ops.pw", "password_file: ops.cred", 1))
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "ops.cred"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func command(cfg *config.Config, id string) commands.Command {
	now := time.Now()
	return commands.Command{RequestID: id, Operator: "ops", Gateway: cfg.Gateway, IssuedAt: now.Format(time.RFC3339Nano),
		ExpiresAt: now.Add(time.Minute).Format(time.RFC3339Nano)}
}

// reply runs c through the command handler, as the gateway does with a
// command from MQTT (a refused command touches neither store nor camera).
func reply(t *testing.T, cfg *config.Config, c commands.Command) commands.Reply {
	t.Helper()
	payload, _ := json.Marshal(c)
	h := &commands.Handler{Config: func() *config.Config { return cfg }}
	r := h.Handle(context.Background(), "state/refresh", payload)
	b, _ := json.Marshal(r)
	t.Logf("reply to %s: %s", c.RequestID, b)
	return r
}

// G-3.3.2: whoever reads an operator's credential file on the gateway —
// every byte of it — cannot sign a command the gateway accepts: every
// field (and the whole line) tried as an HMAC key (the command key
// earlier versions stored), as an Ed25519 seed or key, and as a password.
// Only the operator's password signs.
func TestG332_CredentialFileSignsNoCommand(t *testing.T) {
	line := access.HashCredential("test-site", "ops", pass, 1, time.Now().Add(24*time.Hour))
	cfg := siteWithCredential(t, line)
	site := cfg.Site.ID
	good := command(cfg, "good")
	commands.Sign(pass, site, "state/refresh", &good)
	if _, err := commands.Check(cfg, "state/refresh", &good, time.Now()); err != nil {
		t.Fatalf("signed with the password: %v", err)
	}
	var keys [][]byte
	texts := append(strings.Split(line, "$"), line)
	for _, f := range texts {
		keys = append(keys, []byte(f))
		if b, err := hex.DecodeString(f); err == nil && len(b) > 0 {
			keys = append(keys, b)
		}
	}
	whole := sha256.Sum256([]byte(line + "\n"))
	keys = append(keys, whole[:])
	n := 0
	forged := func(how string, c commands.Command) {
		t.Helper()
		n++
		if _, err := commands.Check(cfg, "state/refresh", &c, time.Now()); err == nil {
			t.Errorf("a command forged from the credential file (%s) was accepted", how)
		}
	}
	for _, k := range keys {
		c := command(cfg, "forged")
		m := hmac.New(sha256.New, k)
		m.Write(commands.SignedBytes(site, "state/refresh", c))
		c.Signature = hex.EncodeToString(m.Sum(nil))
		forged("HMAC keyed with field", c)
		c.Signature += c.Signature // the length of an Ed25519 signature
		forged("HMAC keyed with field, doubled", c)
		seed := sha256.Sum256(k)
		if len(k) == ed25519.SeedSize {
			seed = [32]byte(k)
		}
		c.Signature = hex.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(seed[:]), commands.SignedBytes(site, "state/refresh", c)))
		forged("Ed25519 seed from field", c)
	}
	for _, f := range texts {
		c := command(cfg, "forged")
		commands.Sign(f, site, "state/refresh", &c)
		forged("field as the password", c)
	}
	t.Logf("%d forgeries from %d candidate keys, all refused", n, len(keys))
	// A forgery gets the plain refusal, the same as a wrong password.
	c := command(cfg, "forged-with-the-file")
	m := hmac.New(sha256.New, []byte(line))
	m.Write(commands.SignedBytes(site, "state/refresh", c))
	c.Signature = hex.EncodeToString(m.Sum(nil))
	if r := reply(t, cfg, c); r.Status != commands.StatusRefused || r.Reason != "authentication failed" {
		t.Errorf("forged command: %+v", r)
	}
	// The signature binds every field: the good one moved to another
	// request, gateway or time is refused.
	for _, mutate := range []func(*commands.Command){
		func(c *commands.Command) { c.RequestID = "other" },
		func(c *commands.Command) { c.Args = json.RawMessage(`{}`) },
		func(c *commands.Command) { c.ExpiresAt = time.Now().Add(2 * time.Minute).Format(time.RFC3339Nano) },
	} {
		c := good
		mutate(&c)
		if _, err := commands.Check(cfg, "state/refresh", &c, time.Now()); err == nil || err.Error() != "authentication failed" {
			t.Errorf("a signed command changed after signing: %v", err)
		}
	}
}

// The signed bytes separate fields by newlines, so a field holding one is
// refused even when signed: otherwise one command's signature could cover
// another split of the same bytes.
func TestNewlineInASignedFieldRefused(t *testing.T) {
	cfg := siteWithCredential(t, access.HashCredential("test-site", "ops", pass, 1, time.Now().Add(24*time.Hour)))
	c := command(cfg, "r\n1")
	commands.Sign(pass, cfg.Site.ID, "state/refresh", &c)
	if _, err := commands.Check(cfg, "state/refresh", &c, time.Now()); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("a request id with a newline: %v", err)
	}
}

// The attack on the earlier form: a $velo1$ file's command MAC key signed
// commands. Now such a file verifies none, even signed with the right
// password, and the refusal names the file and the fix.
func TestOldCredentialLineRefusedForCommands(t *testing.T) {
	cfg := siteWithCredential(t, legacyLine)
	key, _ := hex.DecodeString(strings.Split(legacyLine, "$")[5])
	c := command(cfg, "old-mac")
	m := hmac.New(sha256.New, key)
	m.Write(commands.SignedBytes(cfg.Site.ID, "state/refresh", c))
	c.Signature = hex.EncodeToString(m.Sum(nil))
	r := reply(t, cfg, c)
	if r.Status != commands.StatusRefused || !strings.Contains(r.Reason, "operators[0].password_file ops.cred") ||
		!strings.Contains(r.Reason, "$velo1$") || !strings.Contains(r.Reason, "re-run velo passwd") {
		t.Errorf("command against an old credential line: %+v", r)
	}
	c = command(cfg, "old-right-password")
	commands.Sign(pass, cfg.Site.ID, "state/refresh", &c)
	if r := reply(t, cfg, c); r.Status != commands.StatusRefused || !strings.Contains(r.Reason, "re-run velo passwd") {
		t.Errorf("old credential line, right password: %+v", r)
	}
}
