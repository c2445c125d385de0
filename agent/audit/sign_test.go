package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// signedLog writes a log with entries, checkpoints between them, and a
// short unsigned tail: seq 1-5, checkpoint 6, 7-11, checkpoint 12, 13-14.
func signedLog(t *testing.T) (stateDir, dir string, s *Signer) {
	t.Helper()
	stateDir = t.TempDir()
	dir = filepath.Join(stateDir, "audit")
	fill(t, dir, 5, 1024)
	s, err := LoadSigner(stateDir, "site-a", "gw-1", true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{MaxFileBytes: 1024, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		// Twice: the second finds nothing new to sign and appends nothing.
		for range 2 {
			if _, err := l.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		n := 5
		if round == 1 {
			n = 2
		}
		for i := 0; i < n; i++ {
			if _, err := l.Append(Entry{Actor: "ops", Action: "live_view", Camera: "cam-1", Outcome: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return stateDir, dir, s
}

// rewrite is an attacker without the private key: it edits entry seq and
// recomputes every hash after it, fixing up the checkpoints' signed_hash
// too (or, with dropCheckpoints, leaving the checkpoints out).
func rewrite(t *testing.T, dir string, seq uint64, detail string, dropCheckpoints bool) {
	t.Helper()
	files, _ := Files(dir)
	prev, next := Genesis, uint64(1)
	for _, path := range files {
		var out bytes.Buffer
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
			e, _, err := parseLine(line)
			if err != nil {
				t.Fatal(err)
			}
			if dropCheckpoints && e.Action == CheckpointAction {
				continue
			}
			if e.Seq == seq {
				e.Detail = detail
			}
			if e.Action == CheckpointAction {
				e.Fields["signed_seq"], e.Fields["signed_hash"] = strconv.FormatUint(next-1, 10), prev
			}
			e.Seq, e.Prev, e.Hash = next, prev, ""
			enc, hash, err := encode(e)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(enc)
			prev, next = hash, next+1
		}
		if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyWith(t *testing.T, dir string, o VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// G-4.6(1): the right key verifies every checkpoint and reports the tail
// no signature covers yet.
func TestG46_CheckpointsVerifyWithTheKey(t *testing.T) {
	_, dir, s := signedLog(t)
	rep := verifyWith(t, dir, VerifyOptions{PublicKeys: []ed25519.PublicKey{s.Public()}, Site: "site-a", Gateway: "gw-1"})
	if !rep.OK || !rep.Signed || rep.Checkpoints != 2 || rep.LastCheckpoint != 12 || rep.UnsignedTail != 2 {
		t.Fatalf("%s", rep)
	}
	if !strings.Contains(rep.String(), "2 checkpoints signed (last seq 12), 2 entries after it unsigned") {
		t.Fatalf("report does not tell the unsigned tail: %s", rep)
	}
	if rep := verifyWith(t, dir, VerifyOptions{PublicKeys: []ed25519.PublicKey{s.Public()}, Gateway: "gw-2"}); rep.OK {
		t.Fatalf("a checkpoint signed for gw-1 passed as gw-2's: %s", rep)
	}
}

// G-4.6(1): an attacker rewrites an entry and recomputes the whole chain
// (and the checkpoints' signed hashes). The chain alone verifies; the
// signatures do not, and Verify names the first checkpoint after the edit.
func TestG46_RewriteWithRecomputedHashesFailsAtCheckpoint(t *testing.T) {
	_, dir, s := signedLog(t)
	rewrite(t, dir, 8, "nothing happened here", false)
	if rep := verifyWith(t, dir, VerifyOptions{}); !rep.OK {
		t.Fatalf("the attacker's chain should be consistent on its own: %s", rep)
	}
	rep := verifyWith(t, dir, VerifyOptions{PublicKeys: []ed25519.PublicKey{s.Public()}})
	if rep.OK || rep.Broken.Seq != 12 || !strings.Contains(rep.Broken.Why, "checkpoint seq 12: the signature does not verify") {
		t.Fatalf("a rewritten log passed or was not caught at checkpoint 12: %s", rep)
	}
	// Dropping the checkpoints instead leaves nothing signed.
	_, dir2, s2 := signedLog(t)
	rewrite(t, dir2, 3, "edited", true)
	rep = verifyWith(t, dir2, VerifyOptions{PublicKeys: []ed25519.PublicKey{s2.Public()}})
	if rep.OK || !strings.Contains(rep.Broken.Why, "no signed audit_checkpoint") {
		t.Fatalf("a log stripped of its checkpoints passed: %s", rep)
	}
}

// G-4.6(1): root re-signing with a key of its own passes the state
// directory's (replaced) key, but not the key the centre pinned.
func TestG46_ResignedWithAnotherKeyFailsThePinnedKey(t *testing.T) {
	stateDir, dir, s := signedLog(t)
	pinned := s.Public()
	os.Remove(KeyFile(stateDir))
	forged, err := LoadSigner(stateDir, "site-a", "gw-1", true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{Signer: forged})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	rep := verifyWith(t, dir, VerifyOptions{PublicKeys: []ed25519.PublicKey{pinned}})
	if rep.OK || rep.Broken.Seq != 15 {
		t.Fatalf("a checkpoint signed by another key passed the pinned key: %s", rep)
	}
	pub, _ := os.ReadFile(PubKeyFile(stateDir))
	if strings.TrimSpace(string(pub)) != forged.PublicHex() {
		t.Fatalf("audit.pub %q is not the current key's", pub)
	}
}

// G-4.6(1): cutting the log after a checkpoint leaves valid signatures;
// the head the centre kept (an anchor) shows the cut.
func TestG46_TruncationAfterCheckpointNeedsTheAnchor(t *testing.T) {
	_, dir, s := signedLog(t)
	keys := []ed25519.PublicKey{s.Public()}
	head := verifyWith(t, dir, VerifyOptions{}).Head
	files, _ := Files(dir)
	cutAfter(t, files, 12)
	if rep := verifyWith(t, dir, VerifyOptions{PublicKeys: keys}); !rep.OK || rep.Head.Seq != 12 {
		t.Fatalf("the cut log should still verify on its own: %s", rep)
	}
	rep := verifyWith(t, dir, VerifyOptions{PublicKeys: keys, Anchors: []Head{head}})
	if rep.OK || !strings.Contains(rep.Broken.Why, "truncated") {
		t.Fatalf("truncation after a checkpoint not caught with the published head: %s", rep)
	}
}

// cutAfter removes every entry after seq from the log files.
func cutAfter(t *testing.T, files []string, seq uint64) {
	t.Helper()
	for _, path := range files {
		b, _ := os.ReadFile(path)
		var keep bytes.Buffer
		for _, line := range bytes.SplitAfter(b, []byte("\n")) {
			if e, _, err := parseLine(bytes.TrimRight(line, "\n")); err == nil && e.Seq <= seq {
				keep.Write(line)
			}
		}
		if keep.Len() == 0 {
			os.Remove(path)
		} else if err := os.WriteFile(path, keep.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// G-4.6(1): the key is created owner-only; one readable by group or
// others is refused, as is a link in its place; the CLI never creates it.
func TestG46_SigningKeyFile(t *testing.T) {
	stateDir := t.TempDir()
	if _, err := LoadSigner(stateDir, "s", "g", false); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing key without create: %v", err)
	}
	s, err := LoadSigner(stateDir, "s", "g", true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(KeyFile(stateDir))
	if err != nil || st.Mode().Perm() != 0o400 {
		t.Fatalf("key mode %v, %v", st.Mode().Perm(), err)
	}
	pub, _ := os.ReadFile(PubKeyFile(stateDir))
	keys, err := ParsePublicKeys("audit.pub", pub)
	if err != nil || !keys[0].Equal(s.Public()) || hex.EncodeToString(keys[0]) != s.PublicHex() {
		t.Fatalf("audit.pub %q: %v", pub, err)
	}
	again, err := LoadSigner(stateDir, "s", "g", true)
	if err != nil || !again.Public().Equal(s.Public()) {
		t.Fatalf("a second start made another key: %v", err)
	}
	os.Chmod(KeyFile(stateDir), 0o440)
	if _, err := LoadSigner(stateDir, "s", "g", true); err == nil || !strings.Contains(err.Error(), "readable by group or others") {
		t.Fatalf("a group-readable key was used: %v", err)
	}
	link := t.TempDir()
	os.Symlink(KeyFile(stateDir), KeyFile(link))
	if _, err := LoadSigner(link, "s", "g", true); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a key through a link was used: %v", err)
	}
	if _, err := ParsePublicKeys("pin", []byte("zz\n")); err == nil || !strings.Contains(err.Error(), "pin:1") {
		t.Fatalf("a bad pinned key: %v", err)
	}
}
