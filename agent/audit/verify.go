package audit

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// VerifyOptions restrict and anchor a verification.
type VerifyOptions struct {
	// From, To (zero: unbounded) limit the entries checked by their time;
	// the link into the first entry in range is still checked.
	From, To time.Time
	// Anchors are chain heads published over MQTT (audit_head events):
	// each must match the entry with its seq, and none may lie beyond the
	// log's end (that is a truncation).
	Anchors []Head
}

// Break is where the chain is broken.
type Break struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Seq  uint64 `json:"seq"`
	Why  string `json:"why"`
}

// Report is the result of Verify.
type Report struct {
	OK       bool    `json:"ok"`
	Entries  int     `json:"entries"`
	Checked  int     `json:"checked"`
	Files    int     `json:"files"`
	FirstSeq uint64  `json:"first_seq"`
	Head     Head    `json:"head"`
	Anchors  int     `json:"anchors_checked"`
	Pruned   uint64  `json:"pruned_before_seq,omitempty"`
	Broken   *Break  `json:"broken,omitempty"`
	TookMS   float64 `json:"took_ms"`
}

func (r *Report) String() string {
	if r.Broken != nil {
		return fmt.Sprintf("BROKEN at %s line %d (seq %d): %s (%d entries read, %.1f ms)",
			filepath.Base(r.Broken.File), r.Broken.Line, r.Broken.Seq, r.Broken.Why, r.Entries, r.TookMS)
	}
	return fmt.Sprintf("OK: %d entries (%d checked) in %d files, seq %d..%d, head %s, %d anchors matched, %.1f ms",
		r.Entries, r.Checked, r.Files, r.FirstSeq, r.Head.Seq, short(r.Head.Hash), r.Anchors, r.TookMS)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Verify walks the whole log and reports the first broken link: an entry
// whose content does not match its hash (edited), whose prev is not the
// previous entry's hash or whose seq does not follow (deleted, reordered,
// inserted), an unparsable or torn line, a start that is neither the
// genesis nor vouched for by an audit_pruned entry (old files deleted), or
// an anchor that does not match or lies beyond the end (truncated).
func Verify(dir string, opts VerifyOptions) (*Report, error) {
	t0 := time.Now()
	rep := &Report{}
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	rep.Files = len(files)
	anchors := map[uint64]string{}
	for _, a := range opts.Anchors {
		anchors[a.Seq] = a.Hash
	}
	var prev Entry
	var have bool
	var first Entry
	pruned := map[string]uint64{} // audit_pruned: last hash -> last seq
	fail := func(file string, line int, seq uint64, why string) bool {
		rep.Broken = &Break{File: file, Line: line, Seq: seq, Why: why}
		return false
	}
	inRange := func(e Entry) bool {
		if opts.From.IsZero() && opts.To.IsZero() {
			return true
		}
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return true
		}
		return (opts.From.IsZero() || !t.Before(opts.From)) && (opts.To.IsZero() || !t.After(opts.To))
	}
	var firstFile string
	err = Scan(dir, func(e Entry, hashOK bool, file string, line int, perr error) bool {
		rep.Entries++
		if perr != nil {
			return fail(file, line, prev.Seq+1, perr.Error())
		}
		check := inRange(e)
		if check {
			rep.Checked++
			if !hashOK {
				return fail(file, line, e.Seq, "entry edited: its content does not match its hash")
			}
		}
		if !have {
			first, firstFile = e, file
			rep.FirstSeq = e.Seq
		} else if check {
			if e.Seq != prev.Seq+1 {
				return fail(file, line, e.Seq, fmt.Sprintf("seq %d follows seq %d: entries deleted, inserted or reordered", e.Seq, prev.Seq))
			}
			if e.Prev != prev.Hash {
				return fail(file, line, e.Seq, fmt.Sprintf("prev does not match the hash of seq %d: the chain is broken here", prev.Seq))
			}
		}
		if h, ok := anchors[e.Seq]; ok {
			if h != e.Hash {
				return fail(file, line, e.Seq, fmt.Sprintf("differs from the chain head published for seq %d: rewritten after it was published", e.Seq))
			}
			rep.Anchors++
		}
		if e.Action == "audit_pruned" {
			if s, err := strconv.ParseUint(e.Fields["last_seq"], 10, 64); err == nil {
				pruned[e.Ref] = s
			}
		}
		prev, have = e, true
		return true
	})
	if err != nil {
		return nil, err
	}
	if rep.Broken == nil && have && first.Prev != Genesis {
		if s, ok := pruned[first.Prev]; !ok || s+1 != first.Seq {
			rep.Broken = &Break{File: firstFile, Line: 1, Seq: first.Seq,
				Why: fmt.Sprintf("the log starts at seq %d but no audit_pruned entry accounts for the entries before it: files deleted", first.Seq)}
		} else {
			rep.Pruned = first.Seq
		}
	}
	if rep.Broken == nil && have && first.Prev == Genesis && first.Seq != 1 {
		rep.Broken = &Break{File: firstFile, Line: 1, Seq: first.Seq, Why: "the genesis entry is not seq 1"}
	}
	if rep.Broken == nil {
		for _, a := range opts.Anchors {
			if a.Seq > prev.Seq {
				rep.Broken = &Break{File: "", Seq: prev.Seq, Why: fmt.Sprintf("truncated: the log ends at seq %d but seq %d was published as the chain head", prev.Seq, a.Seq)}
				break
			}
		}
	}
	if have {
		rep.Head = Head{Seq: prev.Seq, Hash: prev.Hash, Time: prev.Time}
	}
	rep.OK = rep.Broken == nil
	rep.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	return rep, nil
}

// Filter selects entries for Show.
type Filter struct {
	Actor, Camera, Action string
	From, To              time.Time
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Entry) bool {
	if f.Actor != "" && e.Actor != f.Actor || f.Camera != "" && e.Camera != f.Camera || f.Action != "" && e.Action != f.Action {
		return false
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil || !f.From.IsZero() && t.Before(f.From) || !f.To.IsZero() && t.After(f.To) {
			return false
		}
	}
	return true
}

// Show returns the entries matching f, oldest first (unparsable lines are
// skipped: Verify reports them).
func Show(dir string, f Filter) ([]Entry, error) {
	var out []Entry
	err := Scan(dir, func(e Entry, _ bool, _ string, _ int, perr error) bool {
		if perr == nil && f.Match(e) {
			out = append(out, e)
		}
		return true
	})
	return out, err
}
