package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outbox is the durable, bounded, ordered queue of messages waiting for the
// broker's acknowledgement. Paho's own stores cannot be it: they keep
// messages only while a client object lives, and lose them on a restart.
//
// Every message gets the next gateway sequence number when it is enqueued;
// Enqueue returns only after the message is fsynced (group commit: messages
// enqueued together share one fsync). Pending messages are read back in
// sequence order; Ack deletes them. When the outbox is over its byte cap,
// the oldest pending messages are dropped and counted (drop policy
// "oldest": the newest events are the ones ops need first after an outage).
//
// The same counter numbers the messages that are not queued (retained
// status and state, whose latest value is all that matters): NextSeq
// reserves numbers in blocks persisted before use, so a sequence number is
// never reused after a restart or kill -9.
type Outbox struct {
	db       *bolt.DB
	maxBytes int64

	mu       sync.Mutex
	next     uint64 // next sequence number to hand out
	reserved uint64 // numbers below this are persisted as used
	bytes    int64  // payload bytes pending
	count    int
	dropped  uint64
	pending  []*obWrite
	acks     []uint64        // acknowledged, to delete in the next commit
	acking   map[uint64]bool // the same, until deleted (After skips them)
	// ackWaiters are told the outcome once the acks queued with them are
	// written.
	ackWaiters []chan error
	kick       chan struct{}
	closed     bool
	wg         sync.WaitGroup
	notify     chan struct{} // closed and replaced when messages are added
	commitMu   sync.Mutex
}

// OutboxMessage is one queued message.
type OutboxMessage struct {
	Seq     uint64 `json:"s"`
	Topic   string `json:"t"`
	Payload []byte `json:"p"`
	Retain  bool   `json:"r,omitempty"`
}

type obWrite struct {
	msg   OutboxMessage
	saved *Saving
}

var (
	bktMsgs = []byte("messages")
	bktMeta = []byte("meta")
	bktReqs = []byte("requests")
	keySeq  = []byte("reserved_seq")
	keyDrop = []byte("dropped")
)

const seqBlock = 1024

// ErrOutboxClosed is returned by Enqueue after Close.
var ErrOutboxClosed = errors.New("outbox closed")

// OpenOutbox opens (or creates) the outbox database at path. maxBytes caps
// the pending payload bytes (default 64 MiB).
func OpenOutbox(path string, maxBytes int64) (*Outbox, error) {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	o := &Outbox{db: db, maxBytes: maxBytes, kick: make(chan struct{}, 1), notify: make(chan struct{}), acking: map[uint64]bool{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bktMsgs, bktMeta, bktReqs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		if v := meta.Get(keySeq); len(v) == 8 {
			o.reserved = binary.BigEndian.Uint64(v)
		}
		if v := meta.Get(keyDrop); len(v) == 8 {
			o.dropped = binary.BigEndian.Uint64(v)
		}
		c := tx.Bucket(bktMsgs).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			o.count++
			o.bytes += int64(len(v))
			if s := binary.BigEndian.Uint64(k); s >= o.reserved {
				o.reserved = s + 1
			}
		}
		// Everything below reserved may have been used: start above it.
		o.next = o.reserved
		if o.next == 0 {
			o.next = 1
		}
		o.reserved = o.next + seqBlock
		return meta.Put(keySeq, u64(o.reserved))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	o.wg.Add(1)
	go o.committer()
	return o, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// NextSeq hands out a sequence number for a message that is not queued.
func (o *Outbox) NextSeq() (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.allocLocked()
}

func (o *Outbox) allocLocked() (uint64, error) {
	if o.next >= o.reserved {
		r := o.next + seqBlock
		if err := o.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(keySeq, u64(r)) }); err != nil {
			return 0, fmt.Errorf("outbox: reserve sequence: %w", err)
		}
		o.reserved = r
	}
	s := o.next
	o.next++
	return s, nil
}

// Enqueue numbers a message with the next sequence number (build makes the
// payload from it), saves it durably and returns the number. When Enqueue
// returns nil the message survives a kill -9 until acknowledged.
func (o *Outbox) Enqueue(topic string, retain bool, build func(seq uint64) ([]byte, error)) (uint64, error) {
	s := o.EnqueueAsync(topic, retain, build)
	if err := s.Wait(); err != nil {
		return 0, err
	}
	return s.Seq(), nil
}

// Saving is a message being saved by EnqueueAsync: it is numbered and in
// sequence order from the call, and saved (it survives a kill -9 until
// acknowledged) once Done is closed with a nil Err. Safe from any
// goroutine.
type Saving struct {
	seq  uint64
	err  error
	done chan struct{}
}

// Seq is the message's sequence number (0 if it was refused at once).
func (s *Saving) Seq() uint64 { return s.seq }

// Done is closed once the message is saved or failed.
func (s *Saving) Done() <-chan struct{} { return s.done }

// Err is the save's outcome, valid once Done is closed.
func (s *Saving) Err() error { return s.err }

// Wait waits until the message is saved and returns the outcome.
func (s *Saving) Wait() error {
	<-s.done
	return s.err
}

func (s *Saving) finish(err error) {
	s.err = err
	close(s.done)
}

// EnqueueAsync numbers a message and hands it to the committer without
// waiting for the fsync: the caller learns it is saved from the returned
// Saving. A producer may so keep several saves in flight, as it keeps
// several publishes in flight with an MQTT client, and the committer
// writes them all with one fsync.
func (o *Outbox) EnqueueAsync(topic string, retain bool, build func(seq uint64) ([]byte, error)) *Saving {
	s := &Saving{done: make(chan struct{})}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		s.finish(ErrOutboxClosed)
		return s
	}
	seq, err := o.allocLocked()
	var payload []byte
	if err == nil {
		payload, err = build(seq)
	}
	if err != nil {
		o.mu.Unlock()
		s.finish(err)
		return s
	}
	s.seq = seq
	o.pending = append(o.pending, &obWrite{msg: OutboxMessage{Seq: seq, Topic: topic, Payload: payload, Retain: retain}, saved: s})
	o.wakeCommitter() // under o.mu: Close cannot have closed kick
	o.mu.Unlock()
	return s
}

// wakeCommitter kicks the committer (o.mu held, not closed).
func (o *Outbox) wakeCommitter() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// committer writes what is queued — new messages and acknowledgements —
// in batches, one transaction (one fsync) per batch. While a batch is
// being written the next one gathers, so the more producers wait, the
// more of them share an fsync.
func (o *Outbox) committer() {
	defer o.wg.Done()
	for range o.kick {
		for last := 0; ; {
			if last > 1 {
				o.gather(min(last, gatherMax))
			}
			o.mu.Lock()
			batch, acks, waiters := o.pending, o.acks, o.ackWaiters
			o.pending, o.acks, o.ackWaiters = nil, nil, nil
			o.mu.Unlock()
			var err error
			if len(batch) > 0 || len(acks) > 0 {
				err = o.commit(batch, acks)
			}
			last = len(batch)
			for _, w := range waiters {
				w <- err
			}
			if len(batch) == 0 && len(acks) == 0 {
				break
			}
		}
	}
}

// gatherWait bounds how long the committer waits for the producers it
// just released to queue their next message.
const gatherWait = 500 * time.Microsecond

// gatherMax caps the messages gather waits for: many producers with saves
// in flight fill large batches without waiting.
const gatherMax = 32

// gather waits, at most gatherWait, until as many messages are queued as
// the last batch held (at most gatherMax): producers released by a commit queue their next
// message within microseconds, and starting the next commit with only the
// first of them would make the others wait a whole commit. A lone
// producer (last batch of one) never waits here.
func (o *Outbox) gather(n int) {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	for {
		o.mu.Lock()
		enough := len(o.pending) >= n || o.closed
		o.mu.Unlock()
		if enough {
			return
		}
		select {
		case _, ok := <-o.kick:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// commitResult is what one transaction changed.
type commitResult struct {
	added, freed, dropBytes int64
	acked, dropCount        int
}

func (o *Outbox) commit(batch []*obWrite, acks []uint64) error {
	o.commitMu.Lock()
	defer o.commitMu.Unlock()
	// Only commits change bytes and dropped (commitMu held): read them
	// before the transaction, which must never wait for o.mu (a producer
	// holding o.mu may be waiting for the transaction to reserve numbers).
	o.mu.Lock()
	bytes, dropped := o.bytes, o.dropped
	o.mu.Unlock()
	var r commitResult
	err := o.db.Update(func(tx *bolt.Tx) error {
		r = commitResult{}
		b := tx.Bucket(bktMsgs)
		if err := deleteAcked(b, acks, &r); err != nil {
			return err
		}
		for _, w := range batch {
			v, err := json.Marshal(w.msg)
			if err != nil {
				return err
			}
			if err := b.Put(u64(w.msg.Seq), v); err != nil {
				return err
			}
			r.added += int64(len(v))
		}
		return o.dropOverCap(tx, bytes, dropped, &r)
	})
	o.mu.Lock()
	for _, s := range acks {
		delete(o.acking, s)
	}
	if err == nil {
		o.bytes += r.added - r.dropBytes - r.freed
		o.count += len(batch) - r.dropCount - r.acked
		o.dropped += uint64(r.dropCount)
		close(o.notify)
		o.notify = make(chan struct{})
	}
	o.mu.Unlock()
	// Acknowledgements not written are no longer skipped by After: the
	// messages are sent again after the next reconnect (at least once).
	for _, w := range batch {
		if err != nil {
			w.saved.finish(fmt.Errorf("outbox: save seq %d: %w", w.msg.Seq, err))
		} else {
			w.saved.finish(nil)
		}
	}
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// deleteAcked deletes acknowledged messages (one already dropped is
// skipped).
func deleteAcked(b *bolt.Bucket, acks []uint64, r *commitResult) error {
	for _, s := range acks {
		k := u64(s)
		if v := b.Get(k); v != nil {
			r.freed += int64(len(v))
			r.acked++
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropOverCap drops the oldest messages while the outbox is over its cap
// and persists the drop count.
func (o *Outbox) dropOverCap(tx *bolt.Tx, bytes int64, dropped uint64, r *commitResult) error {
	over := bytes + r.added - r.freed - o.maxBytes
	if over <= 0 {
		return nil
	}
	c := tx.Bucket(bktMsgs).Cursor()
	for k, v := c.First(); k != nil && over > 0; k, v = c.First() {
		over -= int64(len(v))
		r.dropBytes += int64(len(v))
		r.dropCount++
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return tx.Bucket(bktMeta).Put(keyDrop, u64(dropped+uint64(r.dropCount)))
}

// Changed returns a channel closed the next time messages are saved.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notify
}

// After returns up to n pending messages with a sequence number > seq, in
// order.
func (o *Outbox) After(seq uint64, n int) ([]OutboxMessage, error) {
	var out []OutboxMessage
	o.mu.Lock()
	acking := make(map[uint64]bool, len(o.acking))
	for s := range o.acking {
		acking[s] = true
	}
	o.mu.Unlock()
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktMsgs).Cursor()
		for k, v := c.Seek(u64(seq + 1)); k != nil && len(out) < n; k, v = c.Next() {
			if acking[binary.BigEndian.Uint64(k)] {
				continue // acknowledged, deletion queued
			}
			var m OutboxMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("outbox: record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Ack deletes delivered messages and returns once the deletion is
// written (it shares the committer's transaction with new messages).
func (o *Outbox) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	done := make(chan error, 1)
	if !o.queueAcks(seqs, done) {
		return ErrOutboxClosed
	}
	return <-done
}

// AckAsync queues the deletion of delivered messages for the committer's
// next transaction and returns at once: the sender does not wait for an
// fsync of its own. After no longer returns them. Should velo stop before
// the deletion is written, they are sent again (at least once; a consumer
// drops the duplicates by seq).
func (o *Outbox) AckAsync(seqs ...uint64) {
	if len(seqs) > 0 {
		o.queueAcks(seqs, nil)
	}
}

func (o *Outbox) queueAcks(seqs []uint64, done chan error) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	for _, s := range seqs {
		o.acking[s] = true
	}
	o.acks = append(o.acks, seqs...)
	if done != nil {
		o.ackWaiters = append(o.ackWaiters, done)
	}
	o.wakeCommitter()
	o.mu.Unlock()
	return true
}

// OutboxStats is the outbox's size and drop count.
type OutboxStats struct {
	Pending int    `json:"pending"`
	Bytes   int64  `json:"bytes"`
	Dropped uint64 `json:"dropped"`
	MaxByte int64  `json:"max_bytes"`
}

// Stats reports the outbox's size.
func (o *Outbox) Stats() OutboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return OutboxStats{Pending: o.count, Bytes: o.bytes, Dropped: o.dropped, MaxByte: o.maxBytes}
}

// Close waits for queued writes and closes the database.
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	close(o.kick)
	o.wg.Wait()
	return o.db.Close()
}

// SeenRequest records a command request id until expires; it reports
// whether the id was already recorded (a replay or duplicate delivery) and
// the result stored with it.
func (o *Outbox) SeenRequest(id string, expires time.Time, result []byte) (bool, []byte, error) {
	var seen bool
	var prev []byte
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktReqs)
		if v := b.Get([]byte(id)); v != nil {
			seen = true
			if len(v) > 8 {
				prev = append([]byte(nil), v[8:]...)
			}
			return nil
		}
		// Prune expired ids now and then (they cannot be replayed: an
		// expired command is refused before this check).
		now := uint64(time.Now().Unix())
		c := b.Cursor()
		pruned := 0
		for k, v := c.First(); k != nil && pruned < 64; k, v = c.Next() {
			if len(v) >= 8 && binary.BigEndian.Uint64(v[:8])+3600 < now {
				if err := c.Delete(); err != nil {
					return err
				}
				pruned++
			}
		}
		return b.Put([]byte(id), append(u64(uint64(expires.Unix())), result...))
	})
	return seen, prev, err
}

// SetRequestResult stores the result of an executed request id.
func (o *Outbox) SetRequestResult(id string, result []byte) error {
	return o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktReqs)
		v := b.Get([]byte(id))
		if v == nil || len(v) < 8 {
			return nil
		}
		return b.Put([]byte(id), append(append([]byte(nil), v[:8]...), result...))
	})
}
