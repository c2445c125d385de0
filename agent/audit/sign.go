package audit

// Signed checkpoints. The hash chain alone proves nothing against someone
// who rewrites the log and recomputes every hash. So the agent keeps an
// Ed25519 key pair of its own (created at its first start, never leaving
// the gateway) and, each time it publishes the chain head, appends an
// audit_checkpoint entry signing the head it follows. Without the private
// key, a rewritten log cannot carry valid checkpoints.
//
// What is signed is exactly these bytes (NUL-separated, no trailing NUL):
//
//	"velo-audit-checkpoint-v1" NUL site NUL gateway NUL seq NUL hash
//
// where seq is the decimal seq of the entry just before the checkpoint and
// hash its 64-hex-digit chain hash (the checkpoint's own prev). The
// checkpoint entry carries them in its fields: site, gateway, signed_seq,
// signed_hash, key (the public key, hex) and sig (the signature, hex).

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"velo/internal/safefile"
)

// CheckpointAction is the action of a signed checkpoint entry.
const CheckpointAction = "audit_checkpoint"

const (
	signContext = "velo-audit-checkpoint-v1"
	keyFileMode = 0o400
	pubFileMode = 0o444
)

// KeyFile is the private key of a state directory (the Ed25519 seed, 32
// bytes, mode 0400): beside the audit directory, not in it.
func KeyFile(stateDir string) string { return filepath.Join(stateDir, "audit.key") }

// PubKeyFile is its public key: 64 hex digits and a newline, the form the
// centre pins and gives back to `velo audit verify --pubkey`.
func PubKeyFile(stateDir string) string { return filepath.Join(stateDir, "audit.pub") }

// Signer signs checkpoints for one site and gateway.
type Signer struct {
	key           ed25519.PrivateKey
	site, gateway string
}

// LoadSigner reads the state directory's audit key; create makes the pair
// when it is missing (the agent's first start; the CLI never creates one).
// A key readable by group or others is refused, not used.
func LoadSigner(stateDir, site, gateway string, create bool) (*Signer, error) {
	if strings.ContainsRune(site, 0) || strings.ContainsRune(gateway, 0) {
		return nil, errors.New("audit: the site id or gateway name holds a NUL byte: checkpoints could not be signed unambiguously")
	}
	path := KeyFile(stateDir)
	seed, err := safefile.Read(path, safefile.ReadOptions{MaxBytes: ed25519.SeedSize, NoLinks: true, OwnerOnly: true})
	if errors.Is(err, fs.ErrNotExist) && create {
		seed, err = createKey(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: signing key %s missing: the agent creates it at its first start", path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: signing key %s: %d bytes, want %d", path, len(seed), ed25519.SeedSize)
	}
	s := &Signer{key: ed25519.NewKeyFromSeed(seed), site: site, gateway: gateway}
	// The public file is derived, so it is rewritten when missing or
	// altered; the centre's pinned copy is what an attacker cannot change.
	pub := []byte(hex.EncodeToString(s.Public()) + "\n")
	if old, err := os.ReadFile(PubKeyFile(stateDir)); err != nil || string(old) != string(pub) {
		if err := safefile.WriteFile(PubKeyFile(stateDir), pub, pubFileMode); err != nil {
			return nil, fmt.Errorf("audit: public key: %w", err)
		}
	}
	return s, nil
}

func createKey(path string) ([]byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	f, err := safefile.CreateNew(path, keyFileMode)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(seed); err != nil {
		f.Abort()
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return seed, nil
}

// Public is the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// PublicHex is the public key as published and pinned (64 hex digits).
func (s *Signer) PublicHex() string { return hex.EncodeToString(s.Public()) }

// signedMessage is what a checkpoint signs (see the package's sign.go).
func signedMessage(site, gateway string, seq uint64, hash string) []byte {
	return []byte(strings.Join([]string{signContext, site, gateway, strconv.FormatUint(seq, 10), hash}, "\x00"))
}

// checkpointFields signs the head h.
func (s *Signer) checkpointFields(h Head) map[string]string {
	sig := ed25519.Sign(s.key, signedMessage(s.site, s.gateway, h.Seq, h.Hash))
	return map[string]string{
		"site": s.site, "gateway": s.gateway,
		"signed_seq": strconv.FormatUint(h.Seq, 10), "signed_hash": h.Hash,
		"key": s.PublicHex(), "sig": hex.EncodeToString(sig),
	}
}

// Checkpoint appends a checkpoint of the current head signed by the log's
// Signer, under the same lock as the read of that head, so it always signs
// the entry just before it. When the head is already the last checkpoint
// this Log appended (nothing happened since), nothing is appended: an idle
// gateway does not fill its log with checkpoints. It returns the new head.
func (l *Log) Checkpoint() (Head, error) {
	s := l.opts.Signer
	if s == nil {
		return Head{}, errors.New("audit: no signing key: checkpoints cannot be signed")
	}
	e, err := l.appendWith(Entry{Actor: "agent", Action: CheckpointAction, Outcome: "ok"}, func(h Head, e *Entry) bool {
		if h.Seq != 0 && h.Seq == l.checkpointed {
			return false
		}
		e.Fields = s.checkpointFields(h)
		return true
	})
	if err == nil {
		l.mu.Lock()
		l.checkpointed = e.Seq
		l.mu.Unlock()
	}
	return Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, err
}

// Signer is the key that signs the log's checkpoints (nil: none).
func (l *Log) Signer() *Signer { return l.opts.Signer }

// ParsePublicKeys reads public keys, one per line as 64 hex digits (blank
// lines and # comments skipped): the centre may pin more than one when a
// gateway's key was replaced.
func ParsePublicKeys(name string, data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: %s:%d: not an Ed25519 public key (64 hex digits)", name, i+1)
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("audit: %s: no public key", name)
	}
	return keys, nil
}

// checkCheckpoint says why a checkpoint entry does not prove the chain up
// to it ("" when it does): its fields must name the entry before it, and
// the signature must verify with one of keys.
func checkCheckpoint(e Entry, keys []ed25519.PublicKey) string {
	f := e.Fields
	if f["signed_seq"] != strconv.FormatUint(e.Seq-1, 10) || f["signed_hash"] != e.Prev {
		return fmt.Sprintf("checkpoint seq %d does not sign the entry before it", e.Seq)
	}
	sig, err := hex.DecodeString(f["sig"])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Sprintf("checkpoint seq %d has no well-formed signature", e.Seq)
	}
	msg := signedMessage(f["site"], f["gateway"], e.Seq-1, e.Prev)
	for _, k := range keys {
		if ed25519.Verify(k, msg, sig) {
			return ""
		}
	}
	return fmt.Sprintf("checkpoint seq %d: the signature does not verify with the public key (key %s): the log was rewritten after it was signed, or signed by another key",
		e.Seq, short(hex.EncodeToString(keys[0])))
}
