// Package audit is Velo's operator audit log (G-4.6(1),
// ER-4.3): append-only JSON lines, each carrying the SHA-256 of the
// previous entry, fsynced before Append returns, rotated by size, kept at
// least six months. Several processes may append (the agent and the CLI):
// an exclusive flock serialises them and each append reads the chain head
// from the file itself.
//
// An entry line is its JSON body with the hash appended as the last member:
//
//	{"seq":7,"time":"…","actor":"ops","action":"command",…,"prev":"<hex>","hash":"<hex>"}
//
// where hash = SHA-256(prev-hex "\n" body) and body is the line up to (not
// including) `,"hash":`, closed with "}". Editing, deleting or reordering
// any entry breaks the chain at that point. Truncating the tail cannot be
// seen from the file alone: the agent publishes the chain head (seq, hash)
// over MQTT, and Verify checks the log against those anchors.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Genesis is the prev of the very first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// MinKeep is the shortest retention of audit files (G-4.6(1): six months).
const MinKeep = 183 * 24 * time.Hour

// Entry is one audited action.
type Entry struct {
	Seq  uint64 `json:"seq"`
	Time string `json:"time"` // RFC 3339, UTC, nanoseconds
	// Actor is the operator's name, or "agent" for what the agent does on
	// its own (retention deletions, drift reverts).
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Camera string `json:"camera,omitempty"`
	// Outcome: ok, refused, failed, denied…
	Outcome string `json:"outcome,omitempty"`
	// Reason for a recording access (ER-4.4) and Ref its reference
	// (judicial, approval, request id).
	Reason string            `json:"reason,omitempty"`
	Ref    string            `json:"ref,omitempty"`
	Detail string            `json:"detail,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
	Prev   string            `json:"prev"`
	Hash   string            `json:"hash,omitempty"`
}

// Head is the chain head: the last entry's seq and hash.
type Head struct {
	Seq  uint64 `json:"audit_seq"`
	Hash string `json:"audit_hash"`
	Time string `json:"audit_time,omitempty"`
}

// Options configure a Log.
type Options struct {
	// MaxFileBytes rotates to a new file past this size (default 8 MiB).
	MaxFileBytes int64
	// Keep is how long rotated files are kept (never below MinKeep).
	Keep time.Duration
	Now  func() time.Time
	// Signer, when set, signs the checkpoints Checkpoint appends.
	Signer *Signer
}

// Log appends to the audit files in one directory.
type Log struct {
	dir  string
	opts Options

	mu sync.Mutex
	// cached tail of the current file, valid while its size is unchanged
	cur     string
	curSize int64
	head    Head
	// checkpointed is the seq of the last checkpoint this Log appended.
	checkpointed uint64
}

const hashKey = `,"hash":"`

// Open opens (creating) the audit directory. A torn last line (a crash
// mid-write: never acknowledged) is cut off and the cut is itself audited.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 8 << 20
	}
	if opts.Keep < MinKeep {
		opts.Keep = MinKeep
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{dir: dir, opts: opts}
	var torn int64
	err := l.locked(func() error {
		files, err := Files(dir)
		if err != nil || len(files) == 0 {
			return err
		}
		last := files[len(files)-1]
		n, err := repairTail(last)
		torn = n
		return err
	})
	if err != nil {
		return nil, err
	}
	if torn > 0 {
		if _, err := l.Append(Entry{Actor: "agent", Action: "audit_repaired", Outcome: "ok",
			Detail: fmt.Sprintf("a torn last line of %d bytes (a write cut by a crash, never acknowledged) was removed", torn)}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Files lists the audit files of dir, oldest first.
func Files(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(m) // names carry a zero-padded first seq
	return m, nil
}

func fileName(dir string, firstSeq uint64, t time.Time) string {
	return filepath.Join(dir, fmt.Sprintf("audit-%020d-%s.jsonl", firstSeq, t.UTC().Format("20060102T150405Z")))
}

// locked runs f holding the directory's exclusive lock (across processes).
func (l *Log) locked(f func() error) error {
	lf, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit: lock: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

// repairTail cuts an incomplete last line (no newline) off path and
// returns how many bytes were cut.
func repairTail(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	end, err := lastLineStart(f, st.Size(), true)
	if err != nil {
		return 0, err
	}
	if end == st.Size() {
		return 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return st.Size() - end, f.Sync()
}

// lastLineStart returns, with complete=true, the offset just past the last
// newline (where a torn line starts; size if the file ends with a newline);
// with complete=false, the start of the last complete line.
func lastLineStart(f *os.File, size int64, complete bool) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	skipFirstNL := !complete
	for pos := size; pos > 0; {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if skipFirstNL && pos+i == size-1 {
				skipFirstNL = false
				continue
			}
			return pos + i + 1, nil
		}
	}
	return 0, nil
}

// tail returns the head of the chain (the last entry of the newest file),
// reading it from disk unless the cache is still valid. l.mu and the
// directory lock are held.
func (l *Log) tail() (Head, string, int64, error) {
	files, err := Files(l.dir)
	if err != nil {
		return Head{}, "", 0, err
	}
	if len(files) == 0 {
		return Head{Hash: Genesis}, "", 0, nil
	}
	cur := files[len(files)-1]
	st, err := os.Stat(cur)
	if err != nil {
		return Head{}, "", 0, fmt.Errorf("audit: %w", err)
	}
	if cur == l.cur && st.Size() == l.curSize {
		return l.head, cur, st.Size(), nil
	}
	f, err := os.Open(cur)
	if err != nil {
		return Head{}, "", 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	if st.Size() == 0 {
		return Head{}, "", 0, fmt.Errorf("audit: %s is empty: the chain head is lost (run velo audit verify)", cur)
	}
	start, err := lastLineStart(f, st.Size(), false)
	if err != nil {
		return Head{}, "", 0, err
	}
	line := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(line, start); err != nil && err != io.EOF {
		return Head{}, "", 0, err
	}
	e, _, err := parseLine(bytes.TrimRight(line, "\n"))
	if err != nil {
		return Head{}, "", 0, fmt.Errorf("audit: %s: last line: %w", cur, err)
	}
	return Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}, cur, st.Size(), nil
}

// Append writes e as the next entry (Seq, Prev, Hash and, if empty, Time
// are set here), fsyncs it and returns it as written.
func (l *Log) Append(e Entry) (Entry, error) { return l.appendWith(e, nil) }

// appendWith is Append; complete, when set, fills e from the head it
// follows, read under the same lock (so nothing comes in between), or
// returns false to append nothing (e is then returned with the head's seq
// and hash).
func (l *Log) appendWith(e Entry, complete func(h Head, e *Entry) bool) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.locked(func() error {
		h, cur, size, err := l.tail()
		if err != nil {
			return err
		}
		if complete != nil && !complete(h, &e) {
			e.Seq, e.Hash, e.Time = h.Seq, h.Hash, h.Time
			return nil
		}
		now := l.opts.Now().UTC()
		e.Seq, e.Prev, e.Hash = h.Seq+1, h.Hash, ""
		if e.Time == "" {
			e.Time = now.Format(time.RFC3339Nano)
		}
		line, hash, err := encode(e)
		if err != nil {
			return err
		}
		e.Hash = hash
		if cur == "" || size+int64(len(line)) > l.opts.MaxFileBytes {
			cur, size = fileName(l.dir, e.Seq, now), 0
		}
		// Root's commands append here too, in the service account's
		// directory: never through a link.
		f, err := os.OpenFile(cur, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if _, err := f.Write(line); err != nil {
			f.Close()
			return fmt.Errorf("audit: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: fsync: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if size == 0 {
			syncDir(l.dir)
		}
		l.cur, l.curSize, l.head = cur, size+int64(len(line)), Head{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
		return nil
	})
	return e, err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Head returns the current chain head.
func (l *Log) Head() (Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var h Head
	err := l.locked(func() error {
		var err error
		h, _, _, err = l.tail()
		return err
	})
	return h, err
}

// Prune removes rotated files whose last entry is older than Keep (never
// the newest file), auditing each removal with the removed file's last
// hash, so a verifier knows where the kept chain starts. It returns the
// files removed.
func (l *Log) Prune() ([]string, error) {
	cutoff := l.opts.Now().Add(-l.opts.Keep)
	files, err := Files(l.dir)
	if err != nil || len(files) < 2 {
		return nil, err
	}
	var removed []string
	for _, f := range files[:len(files)-1] {
		last, err := lastEntry(f)
		if err != nil {
			return removed, err
		}
		t, err := time.Parse(time.RFC3339Nano, last.Time)
		if err != nil || !t.Before(cutoff) {
			break // files are in order: the rest are newer
		}
		if _, err := l.Append(Entry{Actor: "agent", Action: "audit_pruned", Outcome: "ok", Ref: last.Hash,
			Detail: fmt.Sprintf("%s removed: entries up to seq %d, older than %v", filepath.Base(f), last.Seq, l.opts.Keep),
			Fields: map[string]string{"last_seq": fmt.Sprint(last.Seq), "last_time": last.Time}}); err != nil {
			return removed, err
		}
		if err := os.Remove(f); err != nil {
			return removed, fmt.Errorf("audit: %w", err)
		}
		removed = append(removed, f)
	}
	return removed, nil
}

func lastEntry(path string) (Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Entry{}, err
	}
	start, err := lastLineStart(f, st.Size(), false)
	if err != nil {
		return Entry{}, err
	}
	b := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
		return Entry{}, err
	}
	e, _, err := parseLine(bytes.TrimRight(b, "\n"))
	return e, err
}

// encode returns the entry's line (with newline) and hash. e.Hash must be
// empty.
func encode(e Entry) ([]byte, string, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, "", fmt.Errorf("audit: %w", err)
	}
	hash := chainHash(e.Prev, body)
	line := make([]byte, 0, len(body)+len(hashKey)+66)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashKey...)
	line = append(line, hash...)
	line = append(line, '"', '}', '\n')
	return line, hash, nil
}

func chainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// parseLine decodes a line and checks its own hash (not its link to the
// previous entry). It returns the entry and whether the hash matched.
func parseLine(line []byte) (Entry, bool, error) {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return e, false, fmt.Errorf("not a JSON entry: %v", err)
	}
	i := bytes.LastIndex(line, []byte(hashKey))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || len(line)-i-len(hashKey)-2 != 64 {
		return e, false, errors.New("no hash as last member")
	}
	body := append(append([]byte(nil), line[:i]...), '}')
	return e, chainHash(e.Prev, body) == e.Hash, nil
}

// Scan calls f for every entry of the log, oldest first, with its file and
// line number; parse errors are passed as err (f decides whether to go on).
func Scan(dir string, f func(e Entry, hashOK bool, file string, line int, err error) bool) error {
	files, err := Files(dir)
	if err != nil {
		return err
	}
	for _, path := range files {
		fh, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		r := bufio.NewReaderSize(fh, 256<<10)
		n := 0
		for {
			b, rerr := r.ReadBytes('\n')
			if len(b) == 0 && rerr != nil {
				break
			}
			n++
			torn := !bytes.HasSuffix(b, []byte{'\n'})
			e, ok, perr := parseLine(bytes.TrimRight(b, "\n"))
			if perr == nil && torn {
				perr = errors.New("last line has no newline (torn write or truncation)")
			}
			if !f(e, ok, path, n, perr) {
				fh.Close()
				return nil
			}
			if rerr != nil {
				break
			}
		}
		fh.Close()
	}
	return nil
}
