package telemetry

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func enqueueN(t *testing.T, o *Outbox, n, size int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		s, err := o.Enqueue("t", false, func(seq uint64) ([]byte, error) {
			b := make([]byte, size)
			copy(b, fmt.Sprintf("%d", seq))
			return b, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return seqs
}

// Messages come back in sequence order, Ack removes them, and sequence
// numbers keep growing across a reopen (never reused, even for numbers
// handed out by NextSeq and never saved).
func TestOutboxOrderAckReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o, err := OpenOutbox(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	seqs := enqueueN(t, o, 10, 10)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("sequence %v", seqs)
		}
	}
	ns, _ := o.NextSeq()
	got, err := o.After(0, 100)
	if err != nil || len(got) != 10 || got[0].Seq != seqs[0] || got[9].Seq != seqs[9] {
		t.Fatalf("After: %v %v", got, err)
	}
	if err := o.Ack(seqs[:4]...); err != nil {
		t.Fatal(err)
	}
	if st := o.Stats(); st.Pending != 6 {
		t.Errorf("pending %d after ack", st.Pending)
	}
	o.Close()
	o, err = OpenOutbox(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if st := o.Stats(); st.Pending != 6 || st.Bytes == 0 {
		t.Errorf("after reopen: %+v", st)
	}
	got, _ = o.After(0, 100)
	if len(got) != 6 || got[0].Seq != seqs[4] {
		t.Errorf("after reopen: %d messages from %d", len(got), got[0].Seq)
	}
	s, _ := o.NextSeq()
	if s <= ns {
		t.Errorf("sequence reused after reopen: %d ≤ %d", s, ns)
	}
}

// Concurrent enqueuers share fsyncs (group commit) and still get distinct
// numbers, saved in number order.
func TestOutboxConcurrentEnqueue(t *testing.T) {
	o, err := OpenOutbox(filepath.Join(t.TempDir(), "o.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s, err := o.Enqueue("t", false, func(seq uint64) ([]byte, error) { return []byte("x"), nil })
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[s] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, _ := o.After(0, 1000)
	if len(got) != 400 || len(seen) != 400 {
		t.Fatalf("%d saved, %d distinct", len(got), len(seen))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatal("not in order")
		}
	}
}

// Over its cap the outbox drops the oldest and counts them (the reported
// drop policy), persistently.
func TestOutboxBoundDropsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o, err := OpenOutbox(path, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	seqs := enqueueN(t, o, 100, 500) // ~55 kB of records into a 10 kB cap
	st := o.Stats()
	if st.Bytes > 10_000 || st.Dropped == 0 || uint64(st.Pending)+st.Dropped != 100 {
		t.Fatalf("stats %+v", st)
	}
	got, _ := o.After(0, 1000)
	if got[len(got)-1].Seq != seqs[99] || got[0].Seq != seqs[st.Dropped] {
		t.Errorf("kept %d..%d, want the newest %d..%d", got[0].Seq, got[len(got)-1].Seq, seqs[st.Dropped], seqs[99])
	}
	o.Close()
	o, err = OpenOutbox(path, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Stats().Dropped != st.Dropped {
		t.Errorf("drop count not persisted: %d vs %d", o.Stats().Dropped, st.Dropped)
	}
}

// Request ids: a second sighting is reported with the stored result.
func TestOutboxRequestIDs(t *testing.T) {
	o, err := OpenOutbox(filepath.Join(t.TempDir(), "o.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	exp := time.Now().Add(time.Minute)
	if seen, _, err := o.SeenRequest("a", exp, nil); seen || err != nil {
		t.Fatal("new id seen")
	}
	if err := o.SetRequestResult("a", []byte(`{"status":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	seen, prev, _ := o.SeenRequest("a", exp, nil)
	if !seen || string(prev) != `{"status":"ok"}` {
		t.Errorf("seen %v prev %s", seen, prev)
	}
}

// Producers with many saves in flight cross many blocks of reserved
// sequence numbers (a reservation writes to the database while a commit
// is running): every save completes (no lock-order deadlock between the
// committer and a producer reserving numbers), numbered in order.
func TestOutboxAsyncSavesAcrossReservations(t *testing.T) {
	o, err := OpenOutbox(filepath.Join(t.TempDir(), "o.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	const producers, each, window = 8, 1000, 64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range producers {
			wg.Go(func() {
				var inflight []*Saving
				for i := range each {
					inflight = append(inflight, o.EnqueueAsync("t", false, func(uint64) ([]byte, error) { return []byte("x"), nil }))
					if len(inflight) >= window || i == each-1 {
						for _, s := range inflight {
							if err := s.Wait(); err != nil {
								t.Error(err)
							}
						}
						inflight = inflight[:0]
					}
					if i%100 == 0 {
						o.AckAsync(uint64(i)) // acknowledgements share the commits
					}
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("saves still pending after 2 minutes: deadlock")
	}
	if st := o.Stats(); st.Pending < producers*each-producers*each/100 {
		t.Errorf("pending %d after %d saves", st.Pending, producers*each)
	}
}
