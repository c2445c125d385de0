package retention

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock: a wall clock that tests step, and a monotonic one that only
// moves forward with real elapsed time.
type fakeClock struct {
	wall   time.Time
	mono   time.Duration
	synced bool
}

func (c *fakeClock) Now() time.Time      { return c.wall }
func (c *fakeClock) Mono() time.Duration { return c.mono }
func (c *fakeClock) Synced() bool        { return c.synced }

// advance lets d pass (both clocks).
func (c *fakeClock) advance(d time.Duration) { c.wall = c.wall.Add(d); c.mono += d }

// marker is a recognisable plaintext: after deletion not one copy of it
// may be readable anywhere.
var marker = []byte("UNMASKED-NEVER-MASKED-PLAINTEXT-MARKER|")

func writeSegment(t *testing.T, dir, camera string, start time.Time, size int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("%s_%s.mkv", camera, start.UTC().Format("20060102T150405Z")))
	if err := os.WriteFile(p, bytes.Repeat(marker, size/len(marker)+1)[:size], 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t *testing.T, c *fakeClock) (*Store, string, string) {
	rec, st := t.TempDir(), t.TempDir()
	s, note, err := Open(rec, st, c)
	if err != nil || note != "" {
		t.Fatalf("open: %v %q", err, note)
	}
	return s, rec, st
}

func TestSealDecryptRoundTrip(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, _ := newStore(t, c)
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17} {
		plain := make([]byte, size)
		rand.Read(plain)
		p := filepath.Join(rec, fmt.Sprintf("cam_2026050110%04dZ.mkv", size%10000))
		os.WriteFile(p, plain, 0o600)
		g, err := s.Seal(p, "cam", c.wall, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("size %d: plaintext not removed", size)
		}
		var out bytes.Buffer
		if n, err := s.Decrypt(g.Name, &out); err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("size %d: decrypt %d bytes, %v", size, n, err)
		}
		// A truncated or altered sealed file is refused.
		sealed := filepath.Join(rec, g.Name)
		data, _ := os.ReadFile(sealed)
		os.WriteFile(sealed, data[:len(data)-1], 0o600)
		if _, err := s.Decrypt(g.Name, &bytes.Buffer{}); err == nil {
			t.Errorf("size %d: truncated segment decrypted", size)
		}
		data[len(data)/2] ^= 1
		os.WriteFile(sealed, data, 0o600)
		if _, err := s.Decrypt(g.Name, &bytes.Buffer{}); err == nil {
			t.Errorf("size %d: altered segment decrypted", size)
		}
	}
}

// G-3.4: deletion by overwriting, so deleted data cannot be reused. A hard
// link taken before deletion sees the inode's bytes after it: the
// plaintext, the ciphertext and the key must all be zeros by then.
func TestG34_DeletionOverwrites(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	p := writeSegment(t, rec, "cam", c.wall, 300000)
	os.Link(p, filepath.Join(rec, "probe-plain")) // same filesystem as rec
	g, err := s.Seal(p, "cam", c.wall, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	os.Link(filepath.Join(rec, g.Name), filepath.Join(rec, "probe-sealed"))
	os.Link(s.keyPath(g.Name), filepath.Join(st, "keys", "probe-key"))
	c.advance(25 * time.Hour)
	del := sweep(t, s, 24*time.Hour)
	if len(del) != 1 || del[0].Err != nil {
		t.Fatalf("swept %+v", del)
	}
	recoverable := 0
	for _, probe := range []string{filepath.Join(rec, "probe-plain"), filepath.Join(rec, "probe-sealed"), filepath.Join(st, "keys", "probe-key")} {
		b, err := os.ReadFile(probe)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range b {
			if x != 0 {
				recoverable++
			}
		}
		if len(b) == 0 {
			t.Errorf("%s: empty (the test would prove nothing)", probe)
		}
	}
	t.Logf("FIGURES recoverable bytes of a deleted segment (plaintext, ciphertext, key): %d", recoverable)
	if recoverable != 0 {
		t.Errorf("%d non-zero bytes survive deletion", recoverable)
	}
	if _, err := s.Decrypt(g.Name, &bytes.Buffer{}); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("decrypt after deletion: %v", err)
	}
}

// G-3.4, ER-4.5: retention under wall-clock steps while running and across
// restarts. The segment must exist just before its retention and be gone
// just after, on real files, whatever the wall clock does.
func TestG34_RetentionUnderClockJumps(t *testing.T) {
	const ret = 24 * time.Hour
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	type step struct {
		name string
		// jump is applied to the wall clock at one hour of age; restart
		// reopens the store after it (with downtime, the wall clock having
		// moved by jump+downtime).
		jump     time.Duration
		to1970   bool
		restart  bool
		downtime time.Duration
		synced   bool
		// wantLate: how much later than the retention the segment goes
		// (an uncounted, untrusted downtime); never earlier.
		wantLate time.Duration
		note     bool
	}
	cases := []step{
		{name: "no jump", jump: 0},
		{name: "running, wall -30 days", jump: -30 * 24 * time.Hour},
		{name: "running, wall to 1970", to1970: true},
		{name: "running, wall +1 year", jump: 365 * 24 * time.Hour},
		{name: "restart after 2h", restart: true, downtime: 2 * time.Hour},
		{name: "restart, wall -30 days", restart: true, jump: -30 * 24 * time.Hour, downtime: 10 * time.Minute, wantLate: 10 * time.Minute, note: true},
		{name: "restart, wall to 1970", restart: true, to1970: true, downtime: 10 * time.Minute, wantLate: 10 * time.Minute, note: true},
		{name: "restart, wall +1 year", restart: true, jump: 365 * 24 * time.Hour, downtime: 10 * time.Minute, wantLate: 10 * time.Minute, note: true},
		{name: "restart after 40 days, NTP-synced", restart: true, downtime: 40 * 24 * time.Hour, synced: true, note: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{wall: base, synced: tc.synced}
			s, rec, st := newStore(t, c)
			p := writeSegment(t, rec, "cam", c.wall, 50000)
			c.advance(time.Minute) // the segment recorded for a minute
			g, err := s.Seal(p, "cam", base, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			sealed := filepath.Join(rec, g.Name)
			c.advance(time.Hour - time.Minute)
			age := time.Hour
			if tc.restart {
				sweep(t, s, ret) // the agent's last sweep (every 30 s) saved the clock
				// the process stops; the wall clock is reset while it is
				// down (or not), and it comes back after downtime.
				if tc.to1970 {
					c.wall = time.Unix(0, 0).Add(tc.downtime)
				} else {
					c.wall = c.wall.Add(tc.jump + tc.downtime)
				}
				c.mono = 0 // a new process
				var note string
				s, note, err = Open(rec, st, c)
				if err != nil {
					t.Fatal(err)
				}
				if (note != "") != tc.note {
					t.Errorf("note %q", note)
				}
				age += tc.downtime
			} else if tc.to1970 {
				c.wall = time.Unix(0, 0)
			} else {
				c.wall = c.wall.Add(tc.jump)
			}
			if age >= ret {
				// a downtime past the retention: the first sweep deletes
				if d := sweep(t, s, ret); len(d) != 1 {
					t.Fatalf("after %v downtime: swept %d", tc.downtime, len(d))
				}
				return
			}
			// Just before the retention (plus any uncounted downtime): kept.
			before := ret + tc.wantLate - age - time.Second
			c.advance(before)
			if d := sweep(t, s, ret); len(d) != 0 {
				t.Fatalf("deleted early: %d segments at age %v (retention %v)", len(d), age+before, ret)
			}
			if _, err := os.Stat(sealed); err != nil {
				t.Fatalf("segment gone early: %v", err)
			}
			// Two seconds later: gone.
			c.advance(2 * time.Second)
			d := sweep(t, s, ret)
			if len(d) != 1 || d[0].Err != nil {
				t.Fatalf("kept late: swept %+v at age %v", d, age+before+2*time.Second)
			}
			if _, err := os.Stat(sealed); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("sealed file still there")
			}
			t.Logf("FIGURES %s: deleted at true age %v (retention %v: late by %v, never early; wall clock now %s)",
				tc.name, (s.Age(d[0].Segment) + tc.wantLate).Round(time.Second), ret, (s.Age(d[0].Segment) + tc.wantLate - ret).Round(time.Second), c.wall.Format("2006-01-02"))
		})
	}
}

// ER-4.5, ER-4.6: a held segment survives expiry until released; a hold
// needs a reference and an existing segment.
func TestER45_LegalHold(t *testing.T) {
	c := &fakeClock{wall: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s, rec, st := newStore(t, c)
	a, _ := s.Seal(writeSegment(t, rec, "cam", c.wall, 1000), "cam", c.wall, time.Minute)
	b, _ := s.Seal(writeSegment(t, rec, "cam", c.wall.Add(time.Minute), 1000), "cam", c.wall.Add(time.Minute), time.Minute)
	if err := SetHold(rec, st, Hold{Segment: a.Name, By: "exp"}); err == nil || !strings.Contains(err.Error(), "judicial reference") {
		t.Errorf("hold without a reference: %v", err)
	}
	if err := SetHold(rec, st, Hold{Segment: "../../etc/passwd", Ref: "x"}); err == nil {
		t.Error("hold on a path accepted")
	}
	if err := SetHold(rec, st, Hold{Segment: a.Name, Ref: "Proc. pen. 123/2026 R.G.N.R.", By: "exp", At: c.wall}); err != nil {
		t.Fatal(err)
	}
	c.advance(48 * time.Hour)
	d := sweep(t, s, 24*time.Hour)
	if len(d) != 1 || d[0].Segment.Name != b.Name {
		t.Fatalf("swept %+v: want only the unheld one", d)
	}
	if _, err := s.Decrypt(a.Name, &bytes.Buffer{}); err != nil {
		t.Fatalf("held segment unreadable: %v", err)
	}
	h, err := ReleaseHold(st, a.Name)
	if err != nil || h.Ref != "Proc. pen. 123/2026 R.G.N.R." {
		t.Fatal(h, err)
	}
	if d := sweep(t, s, 24*time.Hour); len(d) != 1 || d[0].Segment.Name != a.Name {
		t.Fatalf("after release: swept %+v", d)
	}
}

// The recording directory and the key directory are 0700 even when they
// existed with looser modes: the segment ffmpeg is writing is plaintext
// with the default file mode until it is sealed.
func TestOpenTightensDirectories(t *testing.T) {
	root := t.TempDir()
	rec, state := filepath.Join(root, "rec"), filepath.Join(root, "state")
	for _, d := range []string{rec, filepath.Join(state, "keys")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Open(rec, state, NewSystemClock()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{rec, filepath.Join(state, "keys")} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", d, err, st.Mode().Perm())
		}
	}
}
