package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"velo/agent/recserve"
	"velo/internal/safefile"
	"velo/masking/anonymise/spec"
)

// subjectOptions are the flags of a data subject's copy (G-3.5):
// velo recording export --subject.
type subjectOptions struct {
	on                     bool
	camera, from, to, mark string
}

func (o *subjectOptions) declare(fs *flag.FlagSet) {
	fs.BoolVar(&o.on, "subject", false, "a data subject's copy: others masked (G-3.5; with --camera, --from, --to, --mark)")
	fs.StringVar(&o.camera, "camera", "", "with --subject: the camera `ID`")
	fs.StringVar(&o.from, "from", "", "with --subject: the range's start `TIME` (RFC 3339)")
	fs.StringVar(&o.to, "to", "", "with --subject: the range's end `TIME` (RFC 3339)")
	fs.StringVar(&o.mark, "mark", "", "with --subject: the subject `MARK`, "+spec.MarkSyntax+" (see above)")
}

// subjectWait bounds how long the CLI waits for the agent's next bytes: a
// copy is decoded and searched whole before its first byte is sent.
const subjectWait = 4 * spec.MaxSubjectRange

// request checks the flags (usage errors before anything is asked) and
// makes the request; the agent checks it again.
func (o *subjectOptions) request(segment, ref, out string) (recserve.Request, error) {
	bad := func(format string, a ...any) (recserve.Request, error) {
		return recserve.Request{}, usageError{msg: "recording export --subject: " + fmt.Sprintf(format, a...)}
	}
	if segment != "" {
		return bad("--segment does not go with --subject (the range is --from..--to of --camera)")
	}
	if o.camera == "" || o.from == "" || o.to == "" || o.mark == "" {
		return bad("--camera, --from, --to and --mark are required")
	}
	from, err := time.Parse(time.RFC3339Nano, o.from)
	if err != nil {
		return bad("--from %q: an RFC 3339 time such as 2026-01-01T10:00:00Z", o.from)
	}
	to, err := time.Parse(time.RFC3339Nano, o.to)
	if err != nil {
		return bad("--to %q: an RFC 3339 time such as 2026-01-01T10:05:00Z", o.to)
	}
	if _, err := spec.ParseMark(o.mark); err != nil {
		return bad("--mark: %v", err)
	}
	return recserve.Request{Op: recserve.OpSubjectExport, Camera: o.camera, Reason: recserve.SubjectReason, Ref: ref,
		Out: filepath.Base(out), From: &from, To: &to, Mark: o.mark}, nil
}

// runSubject asks the agent for the copy, keeps the MP4 only if it and
// its sidecar arrived whole (with the SHA-256 the agent audited), and
// writes the sidecar beside it.
func (o *recordingExportOptions) runSubject(s streams) error {
	req, err := o.subject.request(o.segment, o.ref, o.out)
	if err != nil {
		return err
	}
	rs, err := o.open("export")
	if err != nil {
		return err
	}
	rs.client.Wait = subjectWait
	w, finish, err := outFile(o.out, s.stdout)
	if err != nil {
		return err
	}
	var side bytes.Buffer
	req.Operator, req.Password = rs.req.Operator, rs.req.Password
	_, tr, err := rs.client.DoSubject(req, w, &side)
	var sc recserve.SubjectSidecar
	if err == nil {
		if jerr := json.Unmarshal(side.Bytes(), &sc); jerr != nil || sc.SHA256 != tr.SHA256 {
			err = fmt.Errorf("the sidecar received does not match the copy the agent sent and audited")
		}
	}
	if err == nil {
		err = safefile.WriteFile(o.out+".json", side.Bytes(), 0o600)
	}
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("recording export --subject: %w", err)
	}
	m := sc.Masking
	fmt.Fprintf(s.stdout, "exported a data subject's copy of %s, %s to %s, to %s (%d bytes, sha256 %s, audit seq %d)\n",
		sc.Camera, sc.From.Format(time.RFC3339), sc.To.Format(time.RFC3339), o.out, tr.Bytes, tr.SHA256, tr.AuditSeq)
	fmt.Fprintf(s.stdout, "%d frames: subject tracked on %d, %d uncertain (everyone masked), %d masked whole; sidecar %s.json\n",
		m.Frames, m.Tracked, len(m.Uncertain), len(m.WholeFrame), o.out)
	return nil
}
