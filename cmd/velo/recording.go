package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/config"
	"velo/agent/recserve"
	"velo/agent/retention"
	"velo/internal/safefile"
)

// The recorded (masked, sealed) segments, for authorised operators only,
// every use audited (G-3.3.1 b, ER-4.4, ER-4.5, ER-4.6, G-4.6(1)).
// Refusals are audited too.
func recordingCommand(s streams) *ffcli.Command {
	return group("velo recording", "list, view, export and hold recorded segments",
		`Recorded segments are masked and encrypted at rest, and reachable only
through the running agent: velo recording sends the request to velo run
on its local socket (outputs.recording_socket, default
/run/velo/recordings.sock, mode 0660: the velo user and group), and never
reads the state directory or the keys itself. The agent authenticates the
operator, checks their role, cameras and reason, audits every use and
every refusal, and streams the decrypted segment back. When velo run is
not running, nothing is reachable.`,
		recordingListCommand(s), recordingViewCommand(s), recordingExportCommand(s),
		recordingHoldCommand(s), recordingReleaseCommand(s))
}

// recordingAccess are the flags every recording subcommand has: who asks.
type recordingAccess struct {
	config, operator, pwFile string
}

func (r *recordingAccess) declare(fs *flag.FlagSet) {
	fs.StringVar(&r.config, "config", "/etc/velo/site.yaml", "site config `FILE` (read for the agent's socket; its secrets are not read)")
	fs.StringVar(&r.operator, "operator", "", "operator `NAME` (required)")
	fs.StringVar(&r.pwFile, "password-file", "", "`FILE` whose first line is the operator's password (required)")
}

// segmentFlag declares --segment, which names the segment a subcommand
// acts on.
func segmentFlag(fs *flag.FlagSet, name *string) {
	fs.StringVar(name, "segment", "", "segment `NAME`, as velo recording list prints it (required)")
}

// recordingSession is an operator's access to the recordings, through the
// running agent: the CLI sends who asks (the password over the local
// socket only) and what for; the agent authenticates, checks role, camera
// and reason, audits (refusals included) and streams the segment. The CLI
// never reads the state directory, the keys or the audit log.
type recordingSession struct {
	sub    string
	client *recserve.Client
	req    recserve.Request // operator and password; each use adds its own
	store  *agentRecordings
}

// open finds the agent's socket in the config (read without the secrets
// it names, which only the velo user can read) and the operator's
// password.
func (r *recordingAccess) open(sub string) (*recordingSession, error) {
	if r.operator == "" || r.pwFile == "" {
		return nil, usageError{msg: "recording " + sub + ": --operator and --password-file are required"}
	}
	cfg, err := config.LoadUnchecked(r.config)
	if err != nil {
		return nil, err
	}
	if cfg.Outputs.RecordDir == "" {
		return nil, fmt.Errorf("recording: %s records nothing (outputs.record_dir is not set)", r.config)
	}
	pw, err := readOperatorPassword(r.pwFile)
	if err != nil {
		return nil, err
	}
	rs := &recordingSession{sub: sub, client: &recserve.Client{Socket: cfg.Outputs.RecordingSocket},
		req: recserve.Request{Operator: r.operator, Password: pw}}
	rs.store = &agentRecordings{rs: rs}
	return rs, nil
}

// do sends one request of this session; the agent's refusal reads as
// before ("recording view: refused: …").
func (rs *recordingSession) do(req recserve.Request, body io.Writer) (recserve.Reply, *recserve.Trailer, error) {
	req.Operator, req.Password = rs.req.Operator, rs.req.Password
	rep, tr, err := rs.client.Do(req, body)
	if err != nil {
		return rep, tr, fmt.Errorf("recording %s: %w", rs.sub, err)
	}
	return rep, tr, nil
}

// recordings is everything the recording commands read: the running
// agent's sealed store, over its local socket (agentRecordings).
type recordings interface {
	Segments() []retention.Segment
	Age(retention.Segment) time.Duration
	Decrypt(name string, w io.Writer) (int64, error)
}

var _ recordings = (*agentRecordings)(nil)

// agentRecordings is the recordings as the running agent serves them to
// one operator. Segments and Age come from one listing (audited as such);
// Decrypt is a use of the session's kind (use: view with its reason, or
// export with its judicial reference), each checked and audited by the
// agent. got and trailer are the last Decrypt's reply and trailer.
type agentRecordings struct {
	rs      *recordingSession
	use     recserve.Request
	listed  []recserve.Listed
	listErr error
	done    bool
	got     recserve.Reply
	trailer *recserve.Trailer
}

// list asks the agent for the segments the operator may list.
func (a *agentRecordings) list(camera string) ([]recserve.Listed, error) {
	if !a.done {
		rep, _, err := a.rs.do(recserve.Request{Op: recserve.OpList, Camera: camera}, nil)
		a.listed, a.listErr, a.done = rep.Segments, err, true
	}
	return a.listed, a.listErr
}

// Segments implements recordings (empty when the agent refused: list
// says why).
func (a *agentRecordings) Segments() []retention.Segment {
	rows, _ := a.list("")
	out := make([]retention.Segment, len(rows))
	for i, r := range rows {
		out[i] = r.Segment
	}
	return out
}

// Age implements recordings, as of the listing.
func (a *agentRecordings) Age(g retention.Segment) time.Duration {
	rows, _ := a.list("")
	for _, r := range rows {
		if r.Name == g.Name {
			return time.Duration(r.AgeS) * time.Second
		}
	}
	return 0
}

// Decrypt implements recordings: the agent streams the segment, decrypted
// and verified, to w; an error means w must be discarded.
func (a *agentRecordings) Decrypt(name string, w io.Writer) (int64, error) {
	req := a.use
	req.Segment = name
	var n int64
	rep, tr, err := a.rs.do(req, countWriter{w, &n})
	a.got, a.trailer = rep, tr
	return n, err
}

// countWriter counts what passes.
type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

type recordingListOptions struct {
	recordingAccess
	camera string
	json   bool
}

func recordingListCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording list")
	o := &recordingListOptions{}
	o.declare(fs)
	fs.StringVar(&o.camera, "camera", "", "only this camera `ID`")
	fs.BoolVar(&o.json, "json", false, "JSON output")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: synopsis("velo recording list", fs, ""),
		ShortHelp:  "list the recorded segments of the operator's cameras",
		LongHelp: `List recorded segments (camera, start, size, age, expiry, hold) of the
cameras assigned to the operator. Roles: recording-viewer, exporter,
admin.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			rs, err := o.open("list")
			if err != nil {
				return err
			}
			return rs.list(o.camera, o.json, s.stdout)
		},
	}
}

type recordingViewOptions struct {
	recordingAccess
	segment, reason, ref, out string
}

func recordingViewCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording view")
	o := &recordingViewOptions{}
	o.declare(fs)
	segmentFlag(fs, &o.segment)
	fs.StringVar(&o.reason, "reason", "", "`REASON`: maintenance, police-request, court-request, authority-inspection or data-subject-request (required)")
	fs.StringVar(&o.ref, "ref", "", "`REF`: the reference of the request, order, inspection or ticket (required)")
	fs.StringVar(&o.out, "out", "-", "`FILE` to write, - for standard output")
	return &ffcli.Command{
		Name:       "view",
		ShortUsage: synopsis("velo recording view", fs, ""),
		ShortHelp:  "decrypt one segment to watch it",
		LongHelp: `The running agent decrypts one segment and streams it to --out (default
standard output, e.g. | ffplay -) to watch it. Needs a reason from
ER-4.4's list and its reference; the agent audits the access before the
first byte is sent. A file given as --out is kept only if the segment
arrived whole and verified. Roles: recording-viewer, admin.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *recordingViewOptions) run(s streams) error {
	rs, err := o.open("view")
	if err != nil {
		return err
	}
	w, finish, err := outFile(o.out, s.stdout)
	if err != nil {
		return err
	}
	// The agent checks the reason and audits the access before the
	// first byte is sent.
	rs.store.use = recserve.Request{Op: recserve.OpView, Reason: o.reason, Ref: o.ref}
	_, err = rs.store.Decrypt(o.segment, w)
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	return err
}

type recordingExportOptions struct {
	recordingAccess
	segment, ref, out string
	subject           subjectOptions
}

func recordingExportCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording export")
	o := &recordingExportOptions{}
	o.declare(fs)
	fs.StringVar(&o.segment, "segment", "", "segment `NAME`, as velo recording list prints it (needed without --subject)")
	fs.StringVar(&o.ref, "ref", "", "`REF`: the judicial reference, or with --subject the data subject's request reference (required)")
	fs.StringVar(&o.out, "out", "", "`FILE` to write (required; a .json sidecar is written beside it)")
	o.subject.declare(fs)
	return &ffcli.Command{
		Name:       "export",
		ShortUsage: synopsis("velo recording export", fs, ""),
		ShortHelp:  "copy on a judicial or a data subject's request (G-3.5)",
		LongHelp: `Copy one segment (masked, as recorded), streamed by the running agent,
to --out with a JSON sidecar (SHA-256, reference, operator, audit seq),
only on a judicial request (ER-4.6). The copy is kept only if its SHA-256
is the one the agent audited. Role: exporter.

With --subject, a data subject's copy of their own images (G-3.5): the
agent decodes --camera's recordings from --from to --to, follows the
person marked with --mark through the range and masks every other person
and every plate it detects; where it is not sure of the subject, it
masks everyone it detected, and a frame it cannot trust (too dark) is
masked whole. --out gets an MP4 (H.264) any player plays, and FILE.json
a sidecar listing every frame, what was masked there and how. --ref is
the subject's request reference (reason data-subject-request, audited).
At most 15 minutes per copy; the agent makes one copy at a time.

--mark is "frame=N,box=x,y,w,h" or "time=T,point=x,y":
  frame=N      the copy's Nth frame (0 = the first at --from);
  time=T       an RFC 3339 time in the range, or a duration from --from
               (e.g. time=12.5s);
  box=x,y,w,h  the subject's box: top-left corner, width, height;
  point=x,y    a point on the subject (the smallest person detected
               around it, on that frame or the 3 either side).
Coordinates are shares of the frame, from 0 to 1, measured from its
top-left corner (x to the right, y down): box=0.5,0.25,0.1,0.3 starts at
the middle of the width, a quarter down. Role: exporter.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *recordingExportOptions) run(s streams) error {
	if o.out == "" || o.out == "-" {
		return usageError{msg: "recording export: --out FILE is required"}
	}
	if o.subject.on {
		return o.runSubject(s)
	}
	if o.subject.camera != "" || o.subject.from != "" || o.subject.to != "" || o.subject.mark != "" {
		return usageError{msg: "recording export: --camera, --from, --to and --mark go with --subject"}
	}
	rs, err := o.open("export")
	if err != nil {
		return err
	}
	return recordingExport(rs, o.segment, o.ref, o.out, s.stdout)
}

type recordingHoldOptions struct {
	recordingAccess
	segment, ref string
}

func recordingHoldCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording hold")
	o := &recordingHoldOptions{}
	o.declare(fs)
	segmentFlag(fs, &o.segment)
	fs.StringVar(&o.ref, "ref", "", "`REF`: the judicial reference (required)")
	return &ffcli.Command{
		Name:       "hold",
		ShortUsage: synopsis("velo recording hold", fs, ""),
		ShortHelp:  "put a legal hold on a segment",
		LongHelp: `Put a legal hold on a segment (it survives its retention until
released), with the judicial reference (ER-4.5). Roles: exporter, admin.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *recordingHoldOptions) run(s streams) error {
	rs, err := o.open("hold")
	if err != nil {
		return err
	}
	if _, _, err := rs.do(recserve.Request{Op: recserve.OpHold, Segment: o.segment, Ref: o.ref}, nil); err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "held %s (ref %s)\n", o.segment, o.ref)
	return nil
}

type recordingReleaseOptions struct {
	recordingAccess
	segment string
}

func recordingReleaseCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording release")
	o := &recordingReleaseOptions{}
	o.declare(fs)
	segmentFlag(fs, &o.segment)
	return &ffcli.Command{
		Name:       "release",
		ShortUsage: synopsis("velo recording release", fs, ""),
		ShortHelp:  "release a legal hold",
		LongHelp: `Release a legal hold (the segment is deleted at the next sweep if it
has expired). Roles: exporter, admin.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *recordingReleaseOptions) run(s streams) error {
	rs, err := o.open("release")
	if err != nil {
		return err
	}
	if _, _, err := rs.do(recserve.Request{Op: recserve.OpRelease, Segment: o.segment}, nil); err != nil {
		return err
	}
	fmt.Fprintf(s.stdout, "released %s\n", o.segment)
	return nil
}

// outFile opens where a segment is written: stdout for "-", else a new
// file (mode 0600) that never replaces anything at path nor writes
// through a link. finish(ok) puts it at path, or removes it if !ok.
func outFile(path string, stdout io.Writer) (w io.Writer, finish func(ok bool) error, err error) {
	if path == "-" {
		return stdout, func(bool) error { return nil }, nil
	}
	f, err := safefile.CreateNew(path, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("recording: %w", err)
	}
	return f, func(ok bool) error {
		if !ok {
			f.Abort()
			return nil
		}
		return f.Commit()
	}, nil
}

// list prints the segments of the operator's cameras (of camera, if
// set), with their age, expiry and hold, as the agent lists them.
func (rs *recordingSession) list(camera string, asJSON bool, stdout io.Writer) error {
	rows, err := rs.store.list(camera)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	for _, r := range rows {
		hold := ""
		if r.Hold != "" {
			hold = "  HELD " + r.Hold
		}
		fmt.Fprintf(stdout, "%s  %-14s %s  %8d bytes  age %v, expires in %v%s\n", r.Name, r.Camera, r.Start.Format(time.RFC3339), r.PlainSize,
			time.Duration(r.AgeS)*time.Second, time.Duration(r.ExpiresS)*time.Second, hold)
	}
	return nil
}

// ExportSidecar is written beside an export.
type ExportSidecar struct {
	Site        string    `json:"site"`
	Controller  string    `json:"controller"`
	Gateway     string    `json:"gateway"`
	Camera      string    `json:"camera"`
	Segment     string    `json:"segment"`
	Start       time.Time `json:"start"`
	SHA256      string    `json:"sha256"`
	Bytes       int64     `json:"bytes"`
	JudicialRef string    `json:"judicial_ref"`
	Operator    string    `json:"operator"`
	ExportedAt  time.Time `json:"exported_at"`
	Masked      bool      `json:"masked"`
	AuditSeq    uint64    `json:"audit_seq"`
}

// recordingExport writes the segment the agent streams to out (kept only
// if it arrived whole and its SHA-256 is the one the agent audited) and
// the sidecar beside it.
func recordingExport(rs *recordingSession, segment, ref, out string, stdout io.Writer) error {
	w, finish, err := outFile(out, stdout)
	if err != nil {
		return err
	}
	h := sha256.New()
	rs.store.use = recserve.Request{Op: recserve.OpExport, Ref: ref, Out: filepath.Base(out)}
	n, err := rs.store.Decrypt(segment, io.MultiWriter(w, h))
	sum := hex.EncodeToString(h.Sum(nil))
	got, tr := rs.store.got, rs.store.trailer
	if err == nil && (tr == nil || tr.SHA256 != sum || got.Segment == nil || got.Site == nil) {
		err = fmt.Errorf("recording export: the copy received does not match what the agent sent and audited")
	}
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	seg, site := got.Segment, got.Site
	side := ExportSidecar{Site: site.Name, Controller: site.Controller, Gateway: site.Gateway, Camera: seg.Camera, Segment: seg.Name,
		Start: seg.Start, SHA256: sum, Bytes: n, JudicialRef: ref, Operator: rs.req.Operator, ExportedAt: time.Now().UTC(), Masked: true, AuditSeq: tr.AuditSeq}
	b, _ := json.MarshalIndent(side, "", "  ")
	if err := safefile.WriteFile(out+".json", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s to %s (%d bytes, sha256 %s, audit seq %d)\n", seg.Name, out, n, sum, tr.AuditSeq)
	return nil
}
