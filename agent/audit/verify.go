package audit

import (
	"crypto/ed25519"
	"encoding/hex"
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
	// PublicKeys check every audit_checkpoint's signature (any one of them
	// may have signed it); none: checkpoints are counted, not checked.
	PublicKeys []ed25519.PublicKey
	// Site and Gateway, when set, are what every checkpoint must name.
	Site, Gateway string
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
	OK       bool   `json:"ok"`
	Entries  int    `json:"entries"`
	Checked  int    `json:"checked"`
	Files    int    `json:"files"`
	FirstSeq uint64 `json:"first_seq"`
	Head     Head   `json:"head"`
	Anchors  int    `json:"anchors_checked"`
	Pruned   uint64 `json:"pruned_before_seq,omitempty"`
	Broken   *Break `json:"broken,omitempty"`
	// Signed: the checkpoints' signatures were checked with PublicKeys.
	Signed      bool     `json:"signatures_checked"`
	PublicKeys  []string `json:"public_keys,omitempty"`
	Checkpoints int      `json:"checkpoints"`
	// LastCheckpoint is the last checkpoint's seq; UnsignedTail counts
	// the entries after it, which no signature covers yet.
	LastCheckpoint uint64  `json:"last_checkpoint_seq,omitempty"`
	UnsignedTail   int     `json:"unsigned_tail"`
	TookMS         float64 `json:"took_ms"`
}

func (r *Report) String() string {
	if r.Broken != nil {
		return fmt.Sprintf("BROKEN at %s line %d (seq %d): %s (%d entries read, %.1f ms)",
			filepath.Base(r.Broken.File), r.Broken.Line, r.Broken.Seq, r.Broken.Why, r.Entries, r.TookMS)
	}
	return fmt.Sprintf("OK: %d entries (%d checked) in %d files, seq %d..%d, head %s, %d anchors matched, %s%.1f ms",
		r.Entries, r.Checked, r.Files, r.FirstSeq, r.Head.Seq, short(r.Head.Hash), r.Anchors, r.signatures(), r.TookMS)
}

// signatures sums up the checkpoints: how many, whether checked, and the
// tail no signature covers yet ("" for a log never signed, checked
// without a key: there is nothing to say).
func (r *Report) signatures() string {
	switch {
	case r.Signed:
		return fmt.Sprintf("%d checkpoints signed (last seq %d), %d entries after it unsigned, ", r.Checkpoints, r.LastCheckpoint, r.UnsignedTail)
	case r.Checkpoints > 0:
		return fmt.Sprintf("%d checkpoints NOT checked (no public key), ", r.Checkpoints)
	}
	return ""
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// verifier is the walk's memory: the previous entry, the first one, the
// audit_pruned entries seen, and the report being built.
type verifier struct {
	opts      VerifyOptions
	rep       *Report
	anchors   map[uint64]string
	pruned    map[string]uint64 // audit_pruned: last hash -> last seq
	prev      Entry
	have      bool
	first     Entry
	firstFile string
}

// Verify walks the whole log and reports the first broken link: an entry
// whose content does not match its hash (edited), whose prev is not the
// previous entry's hash or whose seq does not follow (deleted, reordered,
// inserted), an unparsable or torn line, a start that is neither the
// genesis nor vouched for by an audit_pruned entry (old files deleted), or
// an anchor that does not match or lies beyond the end (truncated).
func Verify(dir string, opts VerifyOptions) (*Report, error) {
	t0 := time.Now()
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	v := &verifier{opts: opts, rep: &Report{Files: len(files)}, anchors: map[uint64]string{}, pruned: map[string]uint64{}}
	for _, a := range opts.Anchors {
		v.anchors[a.Seq] = a.Hash
	}
	for _, k := range opts.PublicKeys {
		v.rep.PublicKeys = append(v.rep.PublicKeys, hex.EncodeToString(k))
	}
	v.rep.Signed = len(opts.PublicKeys) > 0
	if err := Scan(dir, v.entry); err != nil {
		return nil, err
	}
	v.checkStart()
	v.checkAnchorsReached()
	v.checkSomethingSigned()
	rep := v.rep
	if v.have {
		rep.Head = Head{Seq: v.prev.Seq, Hash: v.prev.Hash, Time: v.prev.Time}
	}
	rep.OK = rep.Broken == nil
	rep.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	return rep, nil
}

func (v *verifier) fail(file string, line int, seq uint64, why string) bool {
	v.rep.Broken = &Break{File: file, Line: line, Seq: seq, Why: why}
	return false
}

// inRange reports whether e is within the From..To window (entries outside
// it are walked but not checked).
func (v *verifier) inRange(e Entry) bool {
	if v.opts.From.IsZero() && v.opts.To.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return true
	}
	return (v.opts.From.IsZero() || !t.Before(v.opts.From)) && (v.opts.To.IsZero() || !t.After(v.opts.To))
}

// entry checks one entry against the previous one; false stops the walk.
func (v *verifier) entry(e Entry, hashOK bool, file string, line int, perr error) bool {
	v.rep.Entries++
	if perr != nil {
		return v.fail(file, line, v.prev.Seq+1, perr.Error())
	}
	check := v.inRange(e)
	if check {
		v.rep.Checked++
		if !hashOK {
			return v.fail(file, line, e.Seq, "entry edited: its content does not match its hash")
		}
	}
	if !v.have {
		v.first, v.firstFile = e, file
		v.rep.FirstSeq = e.Seq
	} else if check {
		if e.Seq != v.prev.Seq+1 {
			return v.fail(file, line, e.Seq, fmt.Sprintf("seq %d follows seq %d: entries deleted, inserted or reordered", e.Seq, v.prev.Seq))
		}
		if e.Prev != v.prev.Hash {
			return v.fail(file, line, e.Seq, fmt.Sprintf("prev does not match the hash of seq %d: the chain is broken here", v.prev.Seq))
		}
	}
	if h, ok := v.anchors[e.Seq]; ok {
		if h != e.Hash {
			return v.fail(file, line, e.Seq, fmt.Sprintf("differs from the chain head published for seq %d: rewritten after it was published", e.Seq))
		}
		v.rep.Anchors++
	}
	if e.Action == CheckpointAction && !v.checkpoint(e, file, line) {
		return false
	}
	v.rep.UnsignedTail++
	if e.Action == "audit_pruned" {
		if s, err := strconv.ParseUint(e.Fields["last_seq"], 10, 64); err == nil {
			v.pruned[e.Ref] = s
		}
	}
	v.prev, v.have = e, true
	return true
}

// checkpoint checks a signed checkpoint (when keys were given) and makes
// it the start of the unsigned tail; false stops the walk.
func (v *verifier) checkpoint(e Entry, file string, line int) bool {
	if v.rep.Signed {
		if why := checkCheckpoint(e, v.opts.PublicKeys); why != "" {
			return v.fail(file, line, e.Seq, why)
		}
		for _, w := range [][3]string{{"site", v.opts.Site, e.Fields["site"]}, {"gateway", v.opts.Gateway, e.Fields["gateway"]}} {
			if w[1] != "" && w[1] != w[2] {
				return v.fail(file, line, e.Seq, fmt.Sprintf("checkpoint seq %d was signed for %s %q, not %q", e.Seq, w[0], w[2], w[1]))
			}
		}
	}
	v.rep.Checkpoints++
	v.rep.LastCheckpoint, v.rep.UnsignedTail = e.Seq, -1 // the checkpoint itself is counted next
	return true
}

// checkSomethingSigned: with a public key, a log holding no checkpoint at
// all proves nothing (rewritten without them, or never signed).
func (v *verifier) checkSomethingSigned() {
	if v.rep.Broken != nil || !v.rep.Signed || !v.have || v.rep.Checkpoints > 0 {
		return
	}
	v.fail("", 0, v.prev.Seq, "no signed audit_checkpoint in the log: nothing proves it was not rewritten")
}

// checkStart: the log starts at the genesis (seq 1), or where an
// audit_pruned entry says the pruned files ended.
func (v *verifier) checkStart() {
	if v.rep.Broken != nil || !v.have {
		return
	}
	first := v.first
	switch {
	case first.Prev != Genesis:
		if s, ok := v.pruned[first.Prev]; !ok || s+1 != first.Seq {
			v.fail(v.firstFile, 1, first.Seq, fmt.Sprintf("the log starts at seq %d but no audit_pruned entry accounts for the entries before it: files deleted", first.Seq))
		} else {
			v.rep.Pruned = first.Seq
		}
	case first.Seq != 1:
		v.fail(v.firstFile, 1, first.Seq, "the genesis entry is not seq 1")
	}
}

// checkAnchorsReached: a published head beyond the end means truncation.
func (v *verifier) checkAnchorsReached() {
	if v.rep.Broken != nil {
		return
	}
	for _, a := range v.opts.Anchors {
		if a.Seq > v.prev.Seq {
			v.fail("", 0, v.prev.Seq, fmt.Sprintf("truncated: the log ends at seq %d but seq %d was published as the chain head", v.prev.Seq, a.Seq))
			return
		}
	}
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
