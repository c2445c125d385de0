package retention

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// G-3.4: a segment a crash left unsealed is sealed at the next start. Its
// age counts from its own start, downtime included: 48 h old under a 24 h
// retention, it goes at the first sweep.
func TestG34_CrashLeftoverAgeCountsFromItsStart(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c := &fakeClock{wall: start}
	_, rec, st := newStore(t, c)
	p := writeSegment(t, rec, "cam", start, 5000)
	c.advance(5 * time.Minute) // recorded for 5 min, then the gateway lost power
	c.wall, c.mono = c.wall.Add(47*time.Hour+55*time.Minute), 0
	s, note, err := Open(rec, st, c)
	if err != nil || note != "" {
		t.Fatalf("reopen: %v %q", err, note)
	}
	// What the agent does with a leftover: its length is to its last write.
	g, err := s.Seal(p, "cam", start, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURES crash leftover of true age 48h: age after sealing %v", s.Age(g).Round(time.Second))
	d := sweep(t, s, 24*time.Hour)
	if len(d) != 1 {
		t.Fatalf("a 48 h old segment under 24 h retention survived the sweep (age on the store's clock %v)", s.Age(g))
	}
}

// sweep runs a sweep with one retention for every camera, failing on an
// error.
func sweep(t *testing.T, s *Store, ret time.Duration) []Deleted {
	t.Helper()
	d, err := s.Sweep(func(string) time.Duration { return ret })
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return d
}

// ER-4.5: while the holds file cannot be read, nothing is deleted: the
// held segment and the unheld one both survive, and the sweep says why.
func TestER45_UnreadableHoldsDeleteNothing(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	held, _ := s.Seal(writeSegment(t, rec, "cam", c.wall, 1000), "cam", c.wall, time.Minute)
	other, _ := s.Seal(writeSegment(t, rec, "cam", c.wall.Add(time.Minute), 1000), "cam", c.wall.Add(time.Minute), time.Minute)
	if err := SetHold(rec, st, Hold{Segment: held.Name, Ref: "R.G. 1/2026", By: "exp", At: c.wall}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st, "holds.json"), []byte(`[{"segment": "`+held.Name+`", "ref": `), 0o600); err != nil {
		t.Fatal(err)
	}
	c.advance(48 * time.Hour)
	d, err := s.Sweep(func(string) time.Duration { return 24 * time.Hour })
	if len(d) != 0 {
		t.Errorf("%d segments deleted while the holds were unreadable", len(d))
	}
	if !errors.Is(err, ErrHoldsUnreadable) || !strings.Contains(err.Error(), "holds.json") {
		t.Errorf("sweep error %v, want ErrHoldsUnreadable naming holds.json", err)
	}
	for _, g := range []Segment{held, other} {
		if _, err := s.Decrypt(g.Name, &bytes.Buffer{}); err != nil {
			t.Errorf("%s: %v", g.Name, err)
		}
	}
}

// G-3.4: a crash after sealing but before the plaintext was shredded
// leaves both; sealing again must overwrite the first key and ciphertext,
// not free them by a rename (a hard link taken before sees the old inode).
func TestG34_ResealOverwritesTheOldKeyAndCiphertext(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	p := writeSegment(t, rec, "cam", c.wall, 200000)
	plain, _ := os.ReadFile(p)
	g, err := s.Seal(p, "cam", c.wall, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, plain, 0o600); err != nil { // the plaintext the crash left
		t.Fatal(err)
	}
	probes := []string{filepath.Join(rec, "probe-sealed"), filepath.Join(st, "keys", "probe-key")}
	os.Link(filepath.Join(rec, g.Name), probes[0])
	os.Link(s.keyPath(g.Name), probes[1])
	if _, err := s.Seal(p, "cam", c.wall, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, probe := range probes {
		b, err := os.ReadFile(probe)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v (%d bytes: the test would prove nothing)", probe, err, len(b))
		}
		if n := len(b) - bytes.Count(b, []byte{0}); n != 0 {
			t.Errorf("%s: %d bytes of the first sealing survive re-sealing", filepath.Base(probe), n)
		}
	}
	var out bytes.Buffer
	if _, err := s.Decrypt(g.Name, &out); err != nil || !bytes.Equal(out.Bytes(), plain) {
		t.Errorf("re-sealed segment: %v", err)
	}
}

// G-3.4: the camera a segment belongs to is inside the sealed file
// (authenticated); a listing that attributes it to another camera is
// refused when reading, so one camera's viewers never see another's video.
func TestG34_SegmentCameraCheckedOnRead(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	g, err := s.Seal(writeSegment(t, rec, "gate.x", c.wall, 1000), "gate.x", c.wall, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The store's index says the segment is gate_x's.
	b, _ := os.ReadFile(filepath.Join(st, "retention.json"))
	var raw map[string]any
	json.Unmarshal(b, &raw)
	raw["segments"].(map[string]any)[g.Name].(map[string]any)["camera"] = "gate_x"
	b, _ = json.Marshal(raw)
	os.WriteFile(filepath.Join(st, "retention.json"), b, 0o600)
	s2, _, err := Open(rec, st, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.Decrypt(g.Name, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "gate.x") {
		t.Errorf("a segment of gate.x read as gate_x's: %v", err)
	}
}

// G-3.4: segment keys are wrapped with the gateway key, which is not in
// the recordings nor beside the segment keys: a copy of the recordings
// with their keys and index, without the gateway key, decrypts nothing.
func TestG34_CopiedRecordingsDecryptNothing(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	var names []string
	for i := range 3 {
		at := c.wall.Add(time.Duration(i) * time.Minute)
		g, err := s.Seal(writeSegment(t, rec, "cam", at, 3000), "cam", at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, g.Name)
	}
	// The thief copies the recordings, the keys folder and the index.
	thief := t.TempDir()
	copyTree(t, rec, filepath.Join(thief, "rec"))
	copyTree(t, filepath.Join(st, "keys"), filepath.Join(thief, "state", "keys"))
	b, _ := os.ReadFile(filepath.Join(st, "retention.json"))
	os.WriteFile(filepath.Join(thief, "state", "retention.json"), b, 0o600)
	stolen, _, err := Open(filepath.Join(thief, "rec"), filepath.Join(thief, "state"), c)
	if err != nil {
		t.Fatal(err)
	}
	readable := 0
	for _, name := range names {
		var out bytes.Buffer
		if _, err := stolen.Decrypt(name, &out); err == nil || bytes.Contains(out.Bytes(), marker) {
			readable++
		}
		// Nor is a key file usable as it is.
		key, _ := os.ReadFile(filepath.Join(thief, "state", "keys", strings.TrimSuffix(name, SealedExt)+".key"))
		f, _ := os.Open(filepath.Join(thief, "rec", name))
		if _, err := decrypt(&out, f, key, nil); err == nil {
			readable++
		}
		f.Close()
	}
	t.Logf("FIGURES segments readable from a copy of the recordings and their keys without the gateway key: %d of %d", readable, len(names))
	if readable != 0 {
		t.Errorf("%d segments decrypted without the gateway key", readable)
	}
	for _, name := range names { // the gateway itself still reads them
		if _, err := s.Decrypt(name, &bytes.Buffer{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// G-3.4: the gateway key is created once, readable by its owner alone; it
// may not sit in the recordings directory; a
// bare key left by an older version is wrapped in place at start.
func TestG34_GatewayKey(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	if fi, err := os.Stat(GatewayKeyFile(st)); err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("gateway key: %v %v", err, fi.Mode())
	}
	if _, _, err := Open(st, st, c); err == nil || !strings.Contains(err.Error(), "recordings directory") {
		t.Errorf("recordings in the state directory: %v", err)
	}
	os.Chmod(GatewayKeyFile(st), 0o440)
	if _, _, err := Open(rec, st, c); err == nil || !strings.Contains(err.Error(), "0400") {
		t.Errorf("group-readable gateway key: %v", err)
	}
	os.Chmod(GatewayKeyFile(st), 0o400)
	g, err := s.Seal(writeSegment(t, rec, "cam", c.wall, 1000), "cam", c.wall, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.readKey(g.Name)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.keyPath(g.Name), key, 0o600) // as an older version left it
	s2, _, err := Open(rec, st, c)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s.keyPath(g.Name)); len(b) != wrappedLen {
		t.Errorf("bare key not wrapped: %d bytes", len(b))
	}
	var out bytes.Buffer
	if _, err := s2.Decrypt(g.Name, &out); err != nil || !bytes.Contains(out.Bytes(), marker) {
		t.Errorf("after wrapping: %v", err)
	}
}
