package retention

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Segment keys are wrapped (AES-256-GCM) with the gateway key, one file
// that never sits in the recordings directory nor among the segment keys:
// a copy of the recordings and their keys, without it, decrypts nothing.

// GatewayKeyFile is where the gateway key of a state directory lives:
// readable by its owner (the velo user) alone, created at first start.
func GatewayKeyFile(stateDir string) string { return filepath.Join(stateDir, "recording.key") }

const gatewayKeyMode = 0o400

// wrappedLen is a wrapped segment key's size: nonce, key, GCM tag.
const wrappedLen = 12 + 32 + 16

// loadGatewayKey reads the gateway key; create makes it when missing (the
// agent's first start). Only the running agent reads it: velo recording
// reaches the recordings through the agent (agent/recserve).
func loadGatewayKey(stateDir, recDir string, create bool) (cipher.AEAD, error) {
	path := GatewayKeyFile(stateDir)
	if inside(path, recDir) {
		return nil, fmt.Errorf("retention: the gateway key %s would sit in the recordings directory %s: keep outputs.record_dir apart from state_dir", path, recDir)
	}
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err = createGatewayKey(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("retention: gateway key %s missing: no segment can be decrypted without it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("retention: gateway key: %w", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("retention: gateway key %s: must be readable by its owner alone (mode 0400)", path)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("retention: gateway key %s: %d bytes, want 32", path, len(key))
	}
	return newGCM(key)
}

func createGatewayKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, gatewayKeyMode)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	syncDir(filepath.Dir(path))
	return key, nil
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// keyAAD binds a wrapped key to its segment: moved to another segment's
// name, it does not unwrap.
func keyAAD(name string) []byte { return []byte("velo segment key\x00" + name) }

func (s *Store) wrapKey(name string, key []byte) []byte {
	n := make([]byte, 12)
	if _, err := rand.Read(n); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return s.gk.Seal(n, n, key, keyAAD(name))
}

func (s *Store) unwrapKey(name string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != wrappedLen {
		return nil, fmt.Errorf("retention: %s: the key file is not a wrapped key", name)
	}
	key, err := s.gk.Open(nil, wrapped[:12], wrapped[12:], keyAAD(name))
	if err != nil {
		return nil, fmt.Errorf("retention: %s: the key does not unwrap with this gateway's key (another gateway's, or altered)", name)
	}
	return key, nil
}

// readKey returns a segment's key, unwrapped.
func (s *Store) readKey(name string) ([]byte, error) {
	wrapped, err := os.ReadFile(s.keyPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrKeyDestroyed
	}
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return s.unwrapKey(name, wrapped)
}

// wrapLegacyKeys wraps, in place, the bare keys an older version wrote:
// overwriting the same bytes, so no bare copy is left in a freed block.
func (s *Store) wrapLegacyKeys() error {
	files, _ := filepath.Glob(filepath.Join(s.keyDir(), "*.key"))
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil || len(raw) != 32 {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(p), ".key") + SealedExt
		f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOFOLLOW, 0) // never through a planted link
		if err != nil {
			return fmt.Errorf("retention: wrapping %s: %w", filepath.Base(p), err)
		}
		_, err = f.WriteAt(s.wrapKey(name, raw), 0)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("retention: wrapping %s: %w", filepath.Base(p), err)
		}
	}
	return nil
}
