package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"velo/agent/audit"
)

// velo audit show prints what a hostile peer put in an entry (a claimed
// user name, a stream path, a device name) without letting it act on the
// terminal: no newline that forges another entry, no escape sequence that
// recolours or clears the screen, no control or bidi character; each
// entry is one line, and the filters still match the stored value.
func TestAuditShowEscapesForgedFields(t *testing.T) {
	dir := t.TempDir()
	al, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := "ops\x1b[2J\x1b[31m\n     9 2026-01-01T00:00:00Z admin      export\r"
	for _, e := range []audit.Entry{
		{Actor: forged, Action: "access_denied", Camera: "cam\n\x07", Outcome: "refused", Detail: "refused \u202egnp.exe\x00 \u009b31m"},
		{Actor: "agent", Action: "drift\x1b]0;owned\x07", Outcome: "ok\x7f", Reason: "r\tx", Ref: "ref\u2028next", Detail: string([]byte{0xff, 0xfe})},
		{Actor: "ops", Action: "live_view", Camera: "cam", Outcome: "ok", Detail: "masked live stream opened"},
	} {
		if _, err := al.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	so, se, code := runCLI(t, "audit", "show", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if n := strings.Count(so, "\n"); n != 3 {
		t.Errorf("%d lines for 3 entries:\n%s", n, so)
	}
	if !utf8.ValidString(so) {
		t.Errorf("the output is not UTF-8: %q", so)
	}
	for i, r := range strings.ReplaceAll(so, "\n", "") {
		if !unicode.IsPrint(r) && r != ' ' {
			t.Errorf("byte %d of the output is %U:\n%q", i, r, so)
			break
		}
	}
	for _, want := range []string{`ops\x1b[2J\x1b[31m\n`, `\u202e`, `drift\x1b]0;owned\a`} {
		if !strings.Contains(so, want) {
			t.Errorf("output lacks the escaped %s:\n%s", want, so)
		}
	}
	so, _, code = runCLI(t, "audit", "show", "--dir", dir, "--operator", forged)
	if code != 0 || strings.Count(so, "\n") != 1 || !strings.Contains(so, "access_denied") {
		t.Errorf("--operator with the stored name: %d\n%s", code, so)
	}
}

// signedAuditLog writes a log the way the agent does: entries, a signed
// checkpoint (seq 4), more entries (5, 6). It returns the audit directory.
func signedAuditLog(t *testing.T, stateDir string) string {
	t.Helper()
	s, err := audit.LoadSigner(stateDir, "site-a", "gw-1", true)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(stateDir, "audit")
	al, err := audit.Open(dir, audit.Options{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if i == 3 {
			if _, err := al.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := al.Append(audit.Entry{Actor: "ops", Action: "recording_access", Camera: "cam", Outcome: "ok", Detail: fmt.Sprint("entry ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// forgeLog is an attacker with Velo's code but not the private key: it
// writes the log again, entry by entry, changing seq 2 and recomputing
// every hash; the checkpoint is copied and pointed at the new head. With
// resign, it first replaces the key pair (root on the gateway can) and
// signs a checkpoint of its own.
func forgeLog(t *testing.T, stateDir, dir string, resign bool) {
	t.Helper()
	orig, err := audit.Show(dir, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := audit.Files(dir)
	for _, f := range files {
		os.Remove(f)
	}
	var opts audit.Options
	if resign {
		os.Remove(audit.KeyFile(stateDir))
		if opts.Signer, err = audit.LoadSigner(stateDir, "site-a", "gw-1", true); err != nil {
			t.Fatal(err)
		}
	}
	al, err := audit.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range orig {
		if e.Seq == 2 {
			e.Detail = "nothing was accessed"
		}
		if e.Action == audit.CheckpointAction && resign {
			if _, err := al.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if e.Action == audit.CheckpointAction {
			h, _ := al.Head()
			e.Fields["signed_seq"], e.Fields["signed_hash"] = fmt.Sprint(h.Seq), h.Hash
		}
		if _, err := al.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// G-4.6(1): a log rewritten with recomputed hashes fails at the signed
// checkpoint, with the state directory's key and with the centre's pinned
// one; root re-signing with a new key pair fools the state directory's key
// but not the pinned one. The public key is printed.
func TestG46_AuditVerifyCatchesARewriteWithTheKey(t *testing.T) {
	stateDir := t.TempDir()
	dir := signedAuditLog(t, stateDir)
	pub, err := os.ReadFile(audit.PubKeyFile(stateDir))
	if err != nil {
		t.Fatal(err)
	}
	pinned := filepath.Join(t.TempDir(), "gw-1.pub")
	if err := os.WriteFile(pinned, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	so, se, code := runCLI(t, "audit", "verify", "--dir", dir, "--pubkey", pinned)
	if code != 0 || !strings.HasPrefix(so, "OK") || !strings.Contains(so, "1 checkpoints signed (last seq 4), 2 entries after it unsigned") ||
		!strings.Contains(so, "public key "+strings.TrimSpace(string(pub))) {
		t.Fatalf("the intact log: exit %d\n%s%s", code, so, se)
	}
	forgeLog(t, stateDir, dir, false)
	for _, args := range [][]string{{"--dir", dir}, {"--dir", dir, "--pubkey", pinned}} {
		so, se, code = runCLI(t, append([]string{"audit", "verify"}, args...)...)
		if code != 1 || !strings.Contains(so, "BROKEN") || !strings.Contains(se, "seq 4") || !strings.Contains(se, "checkpoint seq 4: the signature does not verify") {
			t.Errorf("rewritten log, verify %v: exit %d\n%s%s", args, code, so, se)
		}
	}
	forgeLog(t, stateDir, dir, true)
	if so, se, code = runCLI(t, "audit", "verify", "--dir", dir); code != 0 {
		t.Errorf("re-signed with the replaced key pair, the state directory's key should be fooled (the pinned key is the defence): exit %d\n%s%s", code, so, se)
	}
	so, se, code = runCLI(t, "audit", "verify", "--dir", dir, "--pubkey", pinned)
	if code != 1 || !strings.Contains(se, "checkpoint seq 4: the signature does not verify") {
		t.Errorf("re-signed with another key, the pinned key let it pass: exit %d\n%s%s", code, so, se)
	}
	// A log with no key at hand says its signatures went unchecked.
	bare := filepath.Join(t.TempDir(), "audit")
	if al, err := audit.Open(bare, audit.Options{}); err != nil {
		t.Fatal(err)
	} else if _, err := al.Append(audit.Entry{Actor: "ops", Action: "export"}); err != nil {
		t.Fatal(err)
	}
	if so, _, code = runCLI(t, "audit", "verify", "--dir", bare); code != 0 || !strings.Contains(so, "checkpoint signatures NOT checked") {
		t.Errorf("verify without a key: exit %d\n%s", code, so)
	}
}
