package recserve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/retention"
	"velo/masking/anonymise/spec"
)

// A data subject's copy (G-3.5): velo recording export --subject asks for
// a time range of one camera with a mark on the requester; the agent
// decrypts the segments covering it and hands them to the frame path
// (SubjectCopier, masking/anonymise, wired by the supervisor: recserve
// links no OpenCV), which masks every other person and every plate and
// encodes an MP4. The MP4 streams back, then the sidecar (what was masked
// on every frame and how), then the trailer; audited as an export with
// the request's reference: started before the first segment is
// decrypted, then ok (both SHA-256) or failed.

// subjectTempDir, in the state directory, holds a copy being made (the
// encoded MP4, until it is sent).
const subjectTempDir = "subject-tmp"

// ClearSubjectTemp removes what a copy interrupted by a crash or a kill
// left there (an MP4 of a data subject, not encrypted); the agent calls it
// at start, before serving.
func ClearSubjectTemp(stateDir string) error {
	return os.RemoveAll(filepath.Join(stateDir, subjectTempDir))
}

// SubjectReason is the only reason a subject copy is made for (ER-4.4).
const SubjectReason = "data-subject-request"

// SubjectCopier makes a data subject's copy (anonymise.Subjects), writing
// the MP4 to w once it is whole.
type SubjectCopier interface {
	CopySubject(ctx context.Context, job spec.SubjectJob, w io.Writer) (spec.SubjectReport, error)
}

// SubjectSidecar is the JSON streamed after a subject copy's MP4; the CLI
// writes it, as received, beside the copy.
type SubjectSidecar struct {
	Site       string             `json:"site"`
	Controller string             `json:"controller"`
	Gateway    string             `json:"gateway"`
	Camera     string             `json:"camera"`
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Reason     string             `json:"reason"`
	RequestRef string             `json:"request_ref"`
	Operator   string             `json:"operator"`
	ExportedAt time.Time          `json:"exported_at"`
	Segments   []string           `json:"segments"`
	File       string             `json:"file"`
	SHA256     string             `json:"sha256"` // of the MP4
	Bytes      int64              `json:"bytes"`
	AuditSeq   uint64             `json:"audit_started_seq"`
	Masking    spec.SubjectReport `json:"masking"`
}

// subjectJob checks a subject request and finds its segments; refused
// (audited) when it cannot be made.
func (ss *session) subjectJob() (*spec.SubjectJob, bool) {
	req := ss.req
	ss.entry.Camera = audit.Clean(req.Camera, audit.MaxFieldLen)
	ss.entry.Fields["kind"] = "data-subject-copy"
	if req.From != nil && req.To != nil {
		ss.entry.Fields["from"], ss.entry.Fields["to"] = req.From.UTC().Format(time.RFC3339), req.To.UTC().Format(time.RFC3339)
	}
	ss.entry.Fields["mark"] = cut(req.Mark)
	fail := func(err error) (*spec.SubjectJob, bool) { ss.refused(err); return nil, false }
	if err := ss.op.May(access.ActExport, req.Camera); err != nil {
		return fail(err)
	}
	if req.Reason != SubjectReason {
		return fail(fmt.Errorf("a subject copy is made for reason %s only, not %q (G-3.5)", SubjectReason, cut(req.Reason)))
	}
	if err := access.CheckReason(req.Reason, req.Ref); err != nil {
		return fail(fmt.Errorf("--ref: the data subject's request reference is required (G-3.5): %w", err))
	}
	if req.From == nil || req.To == nil {
		return fail(errors.New("--from and --to are required"))
	}
	m, err := spec.ParseMark(req.Mark)
	if err != nil {
		return fail(fmt.Errorf("--mark: %w", err))
	}
	job := &spec.SubjectJob{Camera: req.Camera, From: req.From.UTC(), To: req.To.UTC(), Mark: m}
	if err := job.Check(); err != nil {
		return fail(err)
	}
	for _, g := range ss.covering(job.From, job.To) {
		name := g.Name
		job.Segments = append(job.Segments, spec.SubjectSegment{Name: name, Start: g.Start, Feed: func(w io.Writer) error {
			_, err := ss.s.Store.Decrypt(name, w)
			return err
		}})
	}
	if len(job.Segments) == 0 {
		return fail(fmt.Errorf("camera %q has no recording between %s and %s", cut(req.Camera), job.From.Format(time.RFC3339), job.To.Format(time.RFC3339)))
	}
	return job, true
}

// covering is the camera's segments that may hold [from, to): the last
// one starting at or before from, and every one starting before to.
func (ss *session) covering(from, to time.Time) []retention.Segment {
	var all []retention.Segment
	for _, g := range ss.s.Store.Segments() {
		if g.Camera == ss.req.Camera && g.Start.Before(to) {
			all = append(all, g)
		}
	}
	slices.SortFunc(all, func(a, b retention.Segment) int { return a.Start.Compare(b.Start) })
	first := 0
	for i, g := range all {
		if !g.Start.After(from) {
			first = i
		}
	}
	return all[first:]
}

// subjectExport makes a data subject's copy and streams it: the MP4, the
// sidecar, the trailer. One at a time (each decodes and searches every
// frame); audited as started before the first byte is decrypted.
func (ss *session) subjectExport(ctx context.Context) {
	job, ok := ss.subjectJob()
	if !ok {
		return
	}
	if ss.s.Subjects == nil {
		ss.failed(errors.New("this agent makes no subject copies (no frame path wired)"))
		return
	}
	select {
	case ss.s.subjectSlot <- struct{}{}:
		defer func() { <-ss.s.subjectSlot }()
	default:
		ss.failed(errors.New("busy: another subject copy is being made, try again when it is done"))
		return
	}
	tmp := filepath.Join(ss.cfg.StateDir, subjectTempDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		ss.failed(err)
		return
	}
	job.TempDir = tmp
	out := cut(filepath.Base(ss.req.Out))
	var names []string
	for _, g := range job.Segments {
		names = append(names, g.Name)
	}
	ss.entry.Fields["segments"] = strings.Join(names, " ")
	ss.entry.Outcome, ss.entry.Detail = "started", fmt.Sprintf("data subject's copy of camera %s, %s to %s, being made to %s", job.Camera, job.From.Format(time.RFC3339), job.To.Format(time.RFC3339), out)
	started, err := ss.s.Audit.Append(ss.entry)
	if err != nil {
		ss.failed(fmt.Errorf("the audit entry could not be written, so nothing is exported: %w", err))
		return
	}
	if err := writeLine(ss.c, Reply{OK: true, Site: ss.site()}); err != nil {
		ss.subjectFailed(0, err)
		return
	}
	side := SubjectSidecar{Site: ss.cfg.Site.Name, Controller: ss.cfg.Site.Controller, Gateway: ss.cfg.Gateway, Camera: job.Camera, From: job.From, To: job.To,
		Reason: SubjectReason, RequestRef: ss.req.Ref, Operator: ss.op.Name, File: out, AuditSeq: started.Seq, Segments: names}
	ss.streamSubject(ctx, job, &side)
}

// streamSubject runs the copy into the stream, then sends the sidecar and
// the trailer, and audits the outcome.
func (ss *session) streamSubject(ctx context.Context, job *spec.SubjectJob, side *SubjectSidecar) {
	fw := frameWriter{w: ss.c, deadline: func() { _ = ss.c.SetWriteDeadline(time.Now().Add(WriteIdle)) }}
	h := sha256.New()
	var n int64
	rep, err := ss.s.Subjects.CopySubject(ctx, *job, countWriter{io.MultiWriter(fw, h), &n})
	if eerr := fw.end(); err == nil {
		err = eerr
	}
	side.SHA256, side.Bytes, side.Masking, side.ExportedAt = hex.EncodeToString(h.Sum(nil)), n, rep, time.Now().UTC()
	b, jerr := json.MarshalIndent(side, "", " ")
	if err == nil {
		err = jerr
	}
	if err != nil {
		b = nil // the sidecar of a failed copy is not sent
	}
	sh := sha256.Sum256(b)
	if _, serr := fw.Write(b); err == nil {
		err = serr
	}
	if eerr := fw.end(); err == nil {
		err = eerr
	}
	tr := Trailer{Bytes: n, SHA256: side.SHA256, SidecarBytes: int64(len(b)), SidecarSHA256: hex.EncodeToString(sh[:])}
	if err == nil {
		ss.entry.Outcome, ss.entry.Detail = "ok", fmt.Sprintf("data subject's copy of camera %s exported to %s (%d bytes, %d frames: %d tracked, %d uncertain, %d masked whole)",
			job.Camera, side.File, n, rep.Frames, rep.Tracked, len(rep.Uncertain), len(rep.WholeFrame))
		ss.entry.Fields["sha256"], ss.entry.Fields["sidecar_sha256"] = tr.SHA256, tr.SidecarSHA256
		var e = ss.entry
		if e, err = ss.s.Audit.Append(ss.entry); err == nil {
			tr.AuditSeq = e.Seq
		}
	} else {
		ss.subjectFailed(n, err)
	}
	if err != nil {
		tr.Error = err.Error()
		ss.s.Log.Error().Err(err).Str("camera", job.Camera).Str("operator", ss.op.Name).Msg("subject copy not made or not sent whole")
	}
	tr.OK = err == nil
	_ = writeLine(ss.c, tr)
}

// subjectFailed audits a subject copy that did not complete.
func (ss *session) subjectFailed(n int64, err error) {
	ss.entry.Outcome, ss.entry.Detail = "failed", fmt.Sprintf("data subject's copy stopped after %d bytes: %v", n, err)
	ss.entry.Fields["bytes"] = strconv.FormatInt(n, 10)
	if _, aerr := ss.s.Audit.Append(ss.entry); aerr != nil {
		ss.s.Log.Error().Err(aerr).Str("action", ss.entry.Action).Msg("audit entry not written")
	}
}

// countWriter counts what passes.
type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	*c.n += int64(k)
	return k, err
}

// DoSubject asks for a data subject's copy: the MP4 is copied to mp4 and
// the sidecar to sidecar; an error means both must be discarded.
func (c *Client) DoSubject(req Request, mp4, sidecar io.Writer) (Reply, *Trailer, error) {
	req.Op = OpSubjectExport
	return c.do(req, func(br *bufio.Reader, deadline func()) (*Trailer, error) {
		n, err := readFrames(br, mp4, deadline)
		if err != nil {
			return nil, fmt.Errorf("subject copy from %s: %w", c.Socket, err)
		}
		hs := sha256.New()
		ns, err := readFrames(br, io.MultiWriter(sidecar, hs), deadline)
		if err != nil {
			return nil, fmt.Errorf("subject copy's sidecar from %s: %w", c.Socket, err)
		}
		tr, err := c.trailer(br, "subject copy")
		if err != nil {
			return tr, err
		}
		if tr.Bytes != n || tr.SidecarBytes != ns || tr.SidecarSHA256 != hex.EncodeToString(hs.Sum(nil)) {
			return tr, fmt.Errorf("subject copy: %d + %d bytes received, the agent sent %d + %d", n, ns, tr.Bytes, tr.SidecarBytes)
		}
		return tr, nil
	})
}
