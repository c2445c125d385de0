// Package retention keeps recorded segments for their camera's retention
// and not a moment longer (G-3.4, ER-4.5):
//
//   - Each completed segment is sealed: encrypted with its own random
//     AES-256-GCM key, kept in a separate key directory and wrapped by the
//     gateway key (keys.go); its camera ID is in the sealed header and
//     checked on reading; the plaintext is overwritten and unlinked.
//     Deleting a segment destroys its key (overwritten, unlinked) and
//     overwrites and unlinks the ciphertext: even a copy of the ciphertext
//     that escaped overwriting is unreadable.
//   - Ages are measured on a retention clock that advances with the
//     monotonic clock while running, so wall-clock steps (−30 days, to
//     1970, +1 year) neither delete early nor keep late. Across a restart
//     the downtime is taken from the wall clock only if it is plausible
//     (0..MaxTrustedDowntime) or the system clock is NTP-synchronised;
//     otherwise it is not counted (never early) and the caller is told.
//     A segment's age counts from its start, so one sealed late (after a
//     crash) is as old as it really is.
//   - Segments under a legal hold (a judicial reference) survive expiry
//     until released (ER-4.5, ER-4.6). Holds live in their own file,
//     shared with the CLI under a lock; while it is unreadable nothing is
//     deleted.
package retention

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"velo/internal/safefile"
)

// SealedExt is the extension of an encrypted segment.
const SealedExt = ".vseg"

// MaxTrustedDowntime is the longest downtime taken from the wall clock
// without NTP synchronisation.
const MaxTrustedDowntime = 30 * 24 * time.Hour

// Clock is the time source (tests inject one).
type Clock interface {
	Now() time.Time
	// Mono is a monotonic reading (unaffected by wall-clock steps).
	Mono() time.Duration
	// Synced reports whether the wall clock is NTP-synchronised.
	Synced() bool
}

// SystemClock is the real clock.
type SystemClock struct{ start time.Time }

// NewSystemClock returns the system clock.
func NewSystemClock() *SystemClock { return &SystemClock{start: time.Now()} }

// Now implements Clock.
func (c *SystemClock) Now() time.Time { return time.Now() }

// Mono implements Clock (Go's monotonic reading).
func (c *SystemClock) Mono() time.Duration { return time.Since(c.start) }

// Synced implements Clock: the kernel's NTP status (adjtimex) says the
// clock is synchronised.
func (c *SystemClock) Synced() bool {
	var tx syscall.Timex
	state, err := syscall.Adjtimex(&tx)
	return err == nil && state != 5 /* TIME_ERROR: unsynchronised */ && tx.Status&0x40 /* STA_UNSYNC */ == 0
}

// Segment is a sealed recording.
type Segment struct {
	Name   string    `json:"name"` // base name of the sealed file
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"` // wall time in its name (display only)
	// Born is the retention clock at its start (see Seal); its age is the
	// retention clock minus Born.
	Born      time.Duration `json:"born"`
	PlainSize int64         `json:"plain_size"`
	SHA256    string        `json:"sha256"` // of the plaintext
}

// Hold is a legal hold on a segment.
type Hold struct {
	Segment string    `json:"segment"`
	Ref     string    `json:"ref"` // judicial reference
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

type state struct {
	// Clock: the retention clock's value when last saved, and the wall
	// time then.
	Elapsed  time.Duration       `json:"elapsed"`
	Wall     time.Time           `json:"wall"`
	Segments map[string]*Segment `json:"segments"`
}

// Deleted is a segment the sweeper removed.
type Deleted struct {
	Segment Segment
	Age     time.Duration
	Err     error
}

// Store is the sealed segments of a gateway.
type Store struct {
	recDir, stateDir string
	clock            Clock
	gk               cipher.AEAD // the gateway key, which wraps segment keys

	mu       sync.Mutex
	st       state
	base     time.Duration // retention clock at monoBase
	monoBase time.Duration

	// The wall clock dates a segment's start (its name). It is trusted for
	// ages when the downtime before this run was counted (or, for a new
	// store, the clock is NTP-synchronised), and only while it has not
	// stepped since openWall.
	wallTrusted bool
	openWall    time.Time
}

// maxWallDrift is how far the wall clock may move from the monotonic one
// before its dates stop being trusted for ages (NTP slews far less; a
// step is more).
const maxWallDrift = 2 * time.Second

// Open loads (or creates) the store. The returned note is non-empty when
// the downtime since the last run was not counted (an implausible wall
// clock without NTP synchronisation).
func Open(recDir, stateDir string, clock Clock) (*Store, string, error) {
	s := &Store{recDir: recDir, stateDir: stateDir, clock: clock}
	for _, d := range []string{recDir, s.keyDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, "", fmt.Errorf("retention: %w", err)
		}
		// ffmpeg writes the segment being recorded (plaintext until it is
		// sealed) with the default mode: the directory keeps everyone
		// else out, even if it was created looser beforehand.
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, "", fmt.Errorf("retention: %w", err)
		}
	}
	var err error
	if s.gk, err = loadGatewayKey(stateDir, recDir, true); err != nil {
		return nil, "", err
	}
	if err := s.wrapLegacyKeys(); err != nil {
		return nil, "", err
	}
	note, err := s.loadState()
	if err != nil {
		return nil, "", err
	}
	s.base, s.monoBase, s.openWall = s.st.Elapsed, clock.Mono(), clock.Now()
	// Segments whose sealed file vanished are forgotten.
	for name := range s.st.Segments {
		if _, err := os.Stat(filepath.Join(recDir, name)); errors.Is(err, os.ErrNotExist) {
			delete(s.st.Segments, name)
		}
	}
	s.mu.Lock()
	err = s.saveLocked()
	s.mu.Unlock()
	return s, note, err
}

// loadState reads the index and counts the downtime since the last run
// when the wall clock allows (see Open).
func (s *Store) loadState() (note string, err error) {
	s.st.Segments = map[string]*Segment{}
	b, err := os.ReadFile(s.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.wallTrusted = s.clock.Synced()
		return "", nil
	case err != nil:
		return "", fmt.Errorf("retention: %w", err)
	}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return "", fmt.Errorf("retention: %s: %w", s.statePath(), err)
	}
	if s.st.Segments == nil {
		s.st.Segments = map[string]*Segment{}
	}
	down := s.clock.Now().Sub(s.st.Wall)
	switch {
	case down >= 0 && down <= MaxTrustedDowntime:
		s.st.Elapsed += down
	case down > 0 && s.clock.Synced():
		s.st.Elapsed += down
		note = fmt.Sprintf("downtime of %v counted: the clock is NTP-synchronised", down.Round(time.Second))
	default:
		return fmt.Sprintf("wall clock moved %v since the last run (now %s) and is not NTP-synchronised: the downtime is not counted, so segments may be kept longer by that downtime, never deleted early",
			down.Round(time.Second), s.clock.Now().UTC().Format(time.RFC3339)), nil
	}
	s.wallTrusted = true
	return note, nil
}

// wallAge is how long ago start was by the wall clock, or 0 when the wall
// clock cannot be trusted for it (then a segment's age is its recorded
// length: kept longer, never deleted early).
func (s *Store) wallAge(start time.Time) time.Duration {
	if !s.wallTrusted {
		return 0
	}
	now := s.clock.Now()
	if drift := now.Sub(s.openWall) - (s.clock.Mono() - s.monoBase); drift.Abs() > maxWallDrift {
		return 0
	}
	return max(now.Sub(start), 0)
}

func (s *Store) keyDir() string    { return filepath.Join(s.stateDir, "keys") }
func (s *Store) statePath() string { return filepath.Join(s.stateDir, "retention.json") }
func (s *Store) keyPath(name string) string {
	return filepath.Join(s.keyDir(), strings.TrimSuffix(name, SealedExt)+".key")
}

// now is the retention clock (s.mu held or not: reads immutable fields).
func (s *Store) now() time.Duration { return s.base + s.clock.Mono() - s.monoBase }

// Now returns the retention clock.
func (s *Store) Now() time.Duration { return s.now() }

func (s *Store) saveLocked() error {
	s.st.Elapsed, s.st.Wall = s.now(), s.clock.Now()
	b, err := json.MarshalIndent(s.st, "", " ")
	if err != nil {
		return err
	}
	return writeAtomic(s.statePath(), b)
}

// writeAtomic replaces path whole. The state directory belongs to the
// service account and root's commands write here too: never through a
// link planted at path or at a temporary name.
func writeAtomic(path string, b []byte) error {
	if err := safefile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Segments lists the sealed segments, oldest first.
func (s *Store) Segments() []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Segment, 0, len(s.st.Segments))
	for _, g := range s.st.Segments {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Born != out[j].Born {
			return out[i].Born < out[j].Born
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Age is a segment's age on the retention clock.
func (s *Store) Age(g Segment) time.Duration { return s.now() - g.Born }

const chunkSize = 1 << 20

var magic = []byte("VELOSEG1\n")

type header struct {
	Camera    string    `json:"camera"`
	Start     time.Time `json:"start"`
	PlainSize int64     `json:"plain_size"`
	Chunk     int       `json:"chunk"`
}

// Seal encrypts the plaintext segment at path (named CAMERA_START.mkv),
// with a fresh key wrapped by the gateway key, registers it, then
// overwrites and unlinks the plaintext. camera is stored in the sealed
// header and checked when reading. The segment's age counts from its
// first frame, start (by the wall clock, while trusted), and never less
// than length, how long it recorded: a segment a crash left unsealed is
// as old as its start says, downtime included. It returns the sealed
// segment.
func (s *Store) Seal(path, camera string, start time.Time, length time.Duration) (Segment, error) {
	in, err := os.Open(path)
	if err != nil {
		return Segment{}, fmt.Errorf("retention: seal: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return Segment{}, err
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + SealedExt
	// A crash after an earlier sealing left its key and ciphertext: they
	// are overwritten, not freed by the renames below.
	if err := s.shredSealed(name); err != nil {
		return Segment{}, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return Segment{}, err
	}
	// The key is durable before any ciphertext exists.
	if err := writeAtomic(s.keyPath(name), s.wrapKey(name, key)); err != nil {
		return Segment{}, err
	}
	hdr, _ := json.Marshal(header{Camera: camera, Start: start.UTC(), PlainSize: st.Size(), Chunk: chunkSize})
	sum, err := s.writeSealed(name, in, key, hdr)
	if err != nil {
		return Segment{}, fmt.Errorf("retention: seal %s: %w", filepath.Base(path), err)
	}
	g := Segment{Name: name, Camera: camera, Start: start.UTC(), PlainSize: st.Size(), SHA256: sum}
	s.mu.Lock()
	g.Born = s.now() - max(length, s.wallAge(start))
	s.st.Segments[name] = &g
	err = s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		return g, err
	}
	return g, Shred(path)
}

// shredSealed overwrites and unlinks whatever an earlier sealing of name
// left: key first, then the ciphertext, and their temporary files.
func (s *Store) shredSealed(name string) error {
	sealed := filepath.Join(s.recDir, name)
	for _, p := range []string{s.keyPath(name), s.keyPath(name) + ".tmp", sealed, sealed + ".tmp"} {
		if err := Shred(p); err != nil {
			return err
		}
	}
	return nil
}

// writeSealed encrypts in to the recordings directory as name, durably.
func (s *Store) writeSealed(name string, in io.Reader, key, hdr []byte) (string, error) {
	outPath := filepath.Join(s.recDir, name)
	out, err := safefile.Create(outPath, 0o600)
	if err != nil {
		return "", err
	}
	sum, err := encrypt(out, in, key, hdr)
	if err == nil {
		err = out.Commit()
	}
	if err != nil {
		out.Abort()
		return "", err
	}
	return sum, nil
}

func nonce(i uint64, last bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n, i)
	if last {
		n[11] = 1
	}
	return n
}

func encrypt(w io.Writer, r io.Reader, key, hdr []byte) (string, error) {
	aead, err := newGCM(key)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(hdr)))
	if _, err := w.Write(append(append(append([]byte(nil), magic...), lb[:]...), hdr...)); err != nil {
		return "", err
	}
	buf, next := make([]byte, chunkSize), make([]byte, chunkSize)
	// ReadFull: nil is a full chunk (more may follow), ErrUnexpectedEOF a
	// partial one and EOF none: either is the last.
	n, err := io.ReadFull(r, buf)
	for i := uint64(0); ; i++ {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return "", err
		}
		last := err != nil
		var n2 int
		var err2 error
		if !last {
			n2, err2 = io.ReadFull(r, next)
			last = err2 == io.EOF // the file ended exactly at this chunk
		}
		h.Write(buf[:n])
		ct := aead.Seal(nil, nonce(i, last), buf[:n], hdr)
		binary.BigEndian.PutUint32(lb[:], uint32(len(ct)))
		if _, err := w.Write(append(lb[:], ct...)); err != nil {
			return "", err
		}
		if last {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		buf, next, n, err = next, buf, n2, err2
	}
}

// ErrKeyDestroyed means the segment's key no longer exists.
var ErrKeyDestroyed = errors.New("retention: the segment's key is destroyed (expired or deleted)")

// Decrypt writes a sealed segment's plaintext to w, checking every chunk
// and the end (a truncated or altered file is an error), and that the
// camera sealed inside it is the one the index gives.
func (s *Store) Decrypt(name string, w io.Writer) (int64, error) {
	if name != filepath.Base(name) || !strings.HasSuffix(name, SealedExt) {
		return 0, fmt.Errorf("retention: %q is not a segment name", name)
	}
	key, err := s.readKey(name)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	g, ok := s.st.Segments[name]
	s.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("retention: no segment %q", name)
	}
	f, err := os.Open(filepath.Join(s.recDir, name))
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	defer f.Close()
	return decrypt(w, f, key, func(h header) error {
		if h.Camera != g.Camera {
			return fmt.Errorf("retention: %s was sealed as camera %q's, the index says %q: refused", name, h.Camera, g.Camera)
		}
		return nil
	})
}

func decrypt(w io.Writer, r io.Reader, key []byte, check func(header) error) (int64, error) {
	aead, err := newGCM(key)
	if err != nil {
		return 0, err
	}
	hdr, err := readHeader(r, check)
	if err != nil {
		return 0, err
	}
	var total int64
	var lb [4]byte
	for i := uint64(0); ; i++ {
		if _, err := io.ReadFull(r, lb[:]); err != nil {
			return total, errors.New("retention: truncated segment (no final chunk)")
		}
		n := binary.BigEndian.Uint32(lb[:])
		if n > chunkSize+64 {
			return total, errors.New("retention: bad chunk length")
		}
		ct := make([]byte, n)
		if _, err := io.ReadFull(r, ct); err != nil {
			return total, errors.New("retention: truncated chunk")
		}
		pt, err := aead.Open(nil, nonce(i, false), ct, hdr)
		last := false
		if err != nil {
			if pt, err = aead.Open(nil, nonce(i, true), ct, hdr); err != nil {
				return total, fmt.Errorf("retention: chunk %d fails authentication (altered or wrong key)", i)
			}
			last = true
		}
		k, err := w.Write(pt)
		total += int64(k)
		if err != nil {
			return total, err
		}
		if last {
			return total, nil
		}
	}
}

// readHeader reads and checks a sealed file's header. The header is
// authenticated with every chunk (associated data): a forged one fails at
// the first chunk, before any plaintext is written.
func readHeader(r io.Reader, check func(header) error) ([]byte, error) {
	m := make([]byte, len(magic)+4)
	if _, err := io.ReadFull(r, m); err != nil || string(m[:len(magic)]) != string(magic) {
		return nil, errors.New("retention: not a sealed segment")
	}
	hl := binary.BigEndian.Uint32(m[len(magic):])
	if hl > 4096 {
		return nil, errors.New("retention: bad header")
	}
	hdr := make([]byte, hl)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, errors.New("retention: truncated header")
	}
	var h header
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, errors.New("retention: bad header")
	}
	if check != nil {
		if err := check(h); err != nil {
			return nil, err
		}
	}
	return hdr, nil
}

// Shred overwrites a file's bytes in place with zeros, fsyncs, and unlinks
// it. On flash storage and copy-on-write filesystems the old blocks may
// survive (docs/compliance.md, "Recordings and retention"): that is why segments are encrypted and
// their keys destroyed.
func Shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("retention: shred: %w", err)
	}
	st, err := f.Stat()
	if err == nil {
		zero := make([]byte, 256<<10)
		for off := int64(0); off < st.Size() && err == nil; off += int64(len(zero)) {
			n := min(int64(len(zero)), st.Size()-off)
			_, err = f.WriteAt(zero[:n], off)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("retention: shred %s: %w", filepath.Base(path), err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("retention: shred: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// Delete destroys a segment: key first (crypto-erase), then the
// ciphertext, both overwritten before unlinking.
func (s *Store) Delete(name string) error {
	if err := Shred(s.keyPath(name)); err != nil {
		return err
	}
	if err := Shred(filepath.Join(s.recDir, name)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.Segments, name)
	return s.saveLocked()
}

// ErrHoldsUnreadable means a sweep deleted nothing: the legal holds could
// not be read, and deleting without them could destroy held segments.
var ErrHoldsUnreadable = errors.New("retention: the legal holds are unreadable: nothing is deleted until they are")

// Sweep deletes every segment whose age (from its start) reaches its
// camera's retention, except held ones. retention returns a camera's
// retention (0: the camera is gone from the config — its segments keep
// the default of 24h). While the holds file cannot be read it deletes
// nothing and returns ErrHoldsUnreadable with the reason.
func (s *Store) Sweep(retention func(camera string) time.Duration) ([]Deleted, error) {
	defer func() {
		s.mu.Lock()
		_ = s.saveLocked() // the clock, even when nothing was deleted
		s.mu.Unlock()
	}()
	holds, err := ReadHolds(s.stateDir)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrHoldsUnreadable, err)
	}
	var out []Deleted
	for _, g := range s.Segments() {
		r := retention(g.Camera)
		if r <= 0 {
			r = 24 * time.Hour
		}
		age := s.Age(g)
		if age < r {
			continue
		}
		if _, held := holds[g.Name]; held {
			continue
		}
		out = append(out, Deleted{Segment: g, Age: age, Err: s.Delete(g.Name)})
	}
	return out, nil
}

// Holds file, shared with the CLI under a lock.

func holdsPath(stateDir string) string { return filepath.Join(stateDir, "holds.json") }

func lockHolds(stateDir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(stateDir, ".holds.lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("retention: %w", err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// ReadHolds returns the holds by segment name.
func ReadHolds(stateDir string) (map[string]Hold, error) {
	b, err := os.ReadFile(holdsPath(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Hold{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	var hs []Hold
	if err := json.Unmarshal(b, &hs); err != nil {
		return nil, fmt.Errorf("retention: %s: %w", holdsPath(stateDir), err)
	}
	m := map[string]Hold{}
	for _, h := range hs {
		m[h.Segment] = h
	}
	return m, nil
}

func writeHolds(stateDir string, m map[string]Hold) error {
	hs := make([]Hold, 0, len(m))
	for _, h := range m {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Segment < hs[j].Segment })
	b, _ := json.MarshalIndent(hs, "", " ")
	return writeAtomic(holdsPath(stateDir), b)
}

// SetHold puts a legal hold on a segment that exists.
func SetHold(recDir, stateDir string, h Hold) error {
	if strings.TrimSpace(h.Ref) == "" {
		return errors.New("retention: a hold needs a judicial reference (ER-4.5)")
	}
	if h.Segment != filepath.Base(h.Segment) || !strings.HasSuffix(h.Segment, SealedExt) {
		return fmt.Errorf("retention: %q is not a segment name", h.Segment)
	}
	if _, err := os.Stat(filepath.Join(recDir, h.Segment)); err != nil {
		return fmt.Errorf("retention: segment %s: %w", h.Segment, err)
	}
	unlock, err := lockHolds(stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := ReadHolds(stateDir)
	if err != nil {
		return err
	}
	if old, ok := m[h.Segment]; ok {
		return fmt.Errorf("retention: %s is already held (ref %s)", h.Segment, old.Ref)
	}
	m[h.Segment] = h
	return writeHolds(stateDir, m)
}

// ReleaseHold removes a hold and returns it.
func ReleaseHold(stateDir, segment string) (Hold, error) {
	unlock, err := lockHolds(stateDir)
	if err != nil {
		return Hold{}, err
	}
	defer unlock()
	m, err := ReadHolds(stateDir)
	if err != nil {
		return Hold{}, err
	}
	h, ok := m[segment]
	if !ok {
		return Hold{}, fmt.Errorf("retention: %s is not held", segment)
	}
	delete(m, segment)
	return h, writeHolds(stateDir, m)
}
