package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/retention"
	"velo/internal/safefile"
)

// The recorded (masked, sealed) segments, for authorised operators only,
// every use audited (G-3.3.1 b, ER-4.4, ER-4.5, ER-4.6, G-4.6(1)).
// Refusals are audited too.
func recordingCommand(s streams) *ffcli.Command {
	return group("velo recording", "list, view, export and hold recorded segments",
		`Recorded segments are masked and encrypted at rest. Every subcommand
authenticates the operator and checks their role and cameras; every use,
and every refusal, is audited.`,
		recordingListCommand(s), recordingViewCommand(s), recordingExportCommand(s),
		recordingHoldCommand(s), recordingReleaseCommand(s))
}

// recordingAccess are the flags every recording subcommand has: who asks.
type recordingAccess struct {
	config, operator, pwFile string
}

func (r *recordingAccess) declare(fs *flag.FlagSet) {
	fs.StringVar(&r.config, "config", "/etc/velo/site.yaml", "site config `FILE`")
	fs.StringVar(&r.operator, "operator", "", "operator `NAME` (required)")
	fs.StringVar(&r.pwFile, "password-file", "", "`FILE` whose first line is the operator's password (required)")
}

// segmentFlag declares --segment, which names the segment a subcommand
// acts on.
func segmentFlag(fs *flag.FlagSet, name *string) {
	fs.StringVar(name, "segment", "", "segment `NAME`, as velo recording list prints it (required)")
}

// recordingSession is an authenticated operator's access to the
// recordings; entry is the audit entry of this use, completed as it goes.
type recordingSession struct {
	sub   string
	cfg   *config.Config
	op    *config.OperatorConfig
	store recordings
	audit *audit.Log
	entry audit.Entry
}

// open loads the config, authenticates the operator (a failure is an
// audited refusal) and opens the recordings read-only. entry is the
// audit entry of the use, without its actor.
func (r *recordingAccess) open(sub string, entry audit.Entry) (*recordingSession, error) {
	if r.operator == "" || r.pwFile == "" {
		return nil, usageError{msg: "recording " + sub + ": --operator and --password-file are required"}
	}
	cfg, err := config.Load(r.config)
	if err != nil {
		return nil, err
	}
	if cfg.Outputs.RecordDir == "" {
		return nil, fmt.Errorf("recording: %s records nothing (outputs.record_dir is not set)", r.config)
	}
	al, err := audit.Open(config.AuditDir(cfg), cfg.AuditOptions())
	if err != nil {
		return nil, err
	}
	entry.Actor = r.operator
	rs := &recordingSession{sub: sub, cfg: cfg, audit: al, entry: entry}
	pw, err := readOperatorPassword(r.pwFile)
	if err != nil {
		return nil, err
	}
	if rs.op, err = cfg.Authenticate(r.operator, pw); err != nil {
		return nil, rs.refused(err)
	}
	if rs.store, err = openRecordings(cfg); err != nil {
		return nil, err
	}
	return rs, nil
}

// recordings is everything the recording commands read. It is the sealed
// store on disk, opened read-only; reading the running agent's instead
// (over a local socket) means changing openRecordings alone.
type recordings interface {
	Segments() []retention.Segment
	Age(retention.Segment) time.Duration
	Decrypt(name string, w io.Writer) (int64, error)
}

func openRecordings(cfg *config.Config) (recordings, error) {
	return retention.ReadOnly(cfg.Outputs.RecordDir, cfg.StateDir)
}

// refused audits a refusal and returns it.
func (rs *recordingSession) refused(err error) error {
	rs.entry.Outcome, rs.entry.Detail = "refused", err.Error()
	if _, aerr := rs.audit.Append(rs.entry); aerr != nil {
		return fmt.Errorf("recording: %v (and the audit entry failed: %v)", err, aerr)
	}
	return fmt.Errorf("recording %s: refused: %w", rs.sub, err)
}

// segment finds the named segment and checks the operator may act on
// its camera.
func (rs *recordingSession) segment(name string, act access.Action) (*retention.Segment, error) {
	var seg *retention.Segment
	for _, g := range rs.store.Segments() {
		if g.Name == name {
			seg = &g
			break
		}
	}
	if seg == nil {
		return nil, rs.refused(fmt.Errorf("no segment %q", name))
	}
	rs.entry.Camera = seg.Camera
	if err := rs.op.May(act, seg.Camera); err != nil {
		return nil, rs.refused(err)
	}
	return seg, nil
}

// succeeded audits the use as done.
func (rs *recordingSession) succeeded(detail string) error {
	rs.entry.Outcome, rs.entry.Detail = "ok", detail
	_, err := rs.audit.Append(rs.entry)
	return err
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
			rs, err := o.open("list", audit.Entry{Action: "recording_list"})
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
		LongHelp: `Decrypt one segment to --out (default standard output, e.g. | ffplay -)
to watch it. Needs a reason from ER-4.4's list and its reference; the
access is audited before the first byte is shown. Roles:
recording-viewer, admin.`,
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
	rs, err := o.open("view", audit.Entry{Action: "recording_access", Reason: o.reason, Ref: o.ref,
		Fields: map[string]string{"segment": o.segment}})
	if err != nil {
		return err
	}
	seg, err := rs.segment(o.segment, access.ActRecordingView)
	if err != nil {
		return err
	}
	if err := access.CheckReason(o.reason, o.ref); err != nil {
		return rs.refused(err)
	}
	// Audited before the first byte is shown.
	if err := rs.succeeded(fmt.Sprintf("segment %s of %s decrypted for viewing", seg.Name, seg.Start.Format(time.RFC3339))); err != nil {
		return err
	}
	w, finish, err := outFile(o.out, s.stdout)
	if err != nil {
		return err
	}
	_, err = rs.store.Decrypt(seg.Name, w)
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	return err
}

type recordingExportOptions struct {
	recordingAccess
	segment, ref, out string
}

func recordingExportCommand(s streams) *ffcli.Command {
	fs := newFlagSet("recording export")
	o := &recordingExportOptions{}
	o.declare(fs)
	segmentFlag(fs, &o.segment)
	fs.StringVar(&o.ref, "ref", "", "`REF`: the judicial reference (required: copies only on a judicial request)")
	fs.StringVar(&o.out, "out", "", "`FILE` to write (required; a .json sidecar is written beside it)")
	return &ffcli.Command{
		Name:       "export",
		ShortUsage: synopsis("velo recording export", fs, ""),
		ShortHelp:  "copy a segment with a sidecar, on a judicial request",
		LongHelp: `Copy one segment (masked, as recorded) to --out with a JSON sidecar
(SHA-256, reference, operator), only on a judicial request (ER-4.6).
Role: exporter.`,
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
	rs, err := o.open("export", audit.Entry{Action: "export", Ref: o.ref, Fields: map[string]string{"segment": o.segment}})
	if err != nil {
		return err
	}
	seg, err := rs.segment(o.segment, access.ActExport)
	if err != nil {
		return err
	}
	if o.ref == "" {
		return rs.refused(errors.New("--ref: a judicial reference is required (ER-4.6: copies only on a judicial request)"))
	}
	if o.out == "" || o.out == "-" {
		return usageError{msg: "recording export: --out FILE is required"}
	}
	return recordingExport(rs.cfg, rs.op, rs.store, seg, o.ref, o.out, rs.audit, rs.entry, s.stdout)
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
	rs, err := o.open("hold", audit.Entry{Action: "hold_set", Ref: o.ref, Fields: map[string]string{"segment": o.segment}})
	if err != nil {
		return err
	}
	seg, err := rs.segment(o.segment, access.ActHold)
	if err != nil {
		return err
	}
	err = retention.SetHold(rs.cfg.Outputs.RecordDir, rs.cfg.StateDir, retention.Hold{Segment: seg.Name, Ref: o.ref, By: rs.op.Name, At: time.Now().UTC()})
	if err != nil {
		return rs.refused(err)
	}
	err = rs.succeeded(fmt.Sprintf("legal hold on %s: kept past its retention until released", seg.Name))
	fmt.Fprintf(s.stdout, "held %s (ref %s)\n", seg.Name, o.ref)
	return err
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
	rs, err := o.open("release", audit.Entry{Action: "hold_released", Fields: map[string]string{"segment": o.segment}})
	if err != nil {
		return err
	}
	seg, err := rs.segment(o.segment, access.ActHold)
	if err != nil {
		return err
	}
	h, err := retention.ReleaseHold(rs.cfg.StateDir, seg.Name)
	if err != nil {
		return rs.refused(err)
	}
	rs.entry.Ref = h.Ref
	err = rs.succeeded(fmt.Sprintf("legal hold on %s released (set by %s at %s)", seg.Name, h.By, h.At.Format(time.RFC3339)))
	fmt.Fprintf(s.stdout, "released %s\n", seg.Name)
	return err
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

type listed struct {
	retention.Segment
	AgeS      int64  `json:"age_s"`
	ExpiresS  int64  `json:"expires_in_s"`
	Retention string `json:"retention"`
	Hold      string `json:"hold_ref,omitempty"`
}

// list prints the segments of the operator's cameras (of camera, if
// set), with their age, expiry and hold.
func (rs *recordingSession) list(camera string, asJSON bool, stdout io.Writer) error {
	cfg, op, store, entry := rs.cfg, rs.op, rs.store, &rs.entry
	if err := op.May(access.ActRecordingList, camera); err != nil {
		return rs.refused(err)
	}
	holds, err := retention.ReadHolds(cfg.StateDir)
	if err != nil {
		return err
	}
	var rows []listed
	for _, g := range store.Segments() {
		if camera != "" && g.Camera != camera || op.May(access.ActRecordingList, g.Camera) != nil {
			continue
		}
		r := config.DefaultRetention
		if c := cfg.Camera(g.Camera); c != nil {
			r = time.Duration(c.Record.Retention)
		}
		age := store.Age(g)
		rows = append(rows, listed{Segment: g, AgeS: int64(age.Seconds()), ExpiresS: int64((r - age).Seconds()), Retention: r.String(), Hold: holds[g.Name].Ref})
	}
	entry.Camera, entry.Outcome, entry.Detail = camera, "ok", fmt.Sprintf("%d segments listed", len(rows))
	if _, err := rs.audit.Append(*entry); err != nil {
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

func recordingExport(cfg *config.Config, op *config.OperatorConfig, store recordings, seg *retention.Segment, ref, out string, al *audit.Log, entry audit.Entry, stdout io.Writer) error {
	w, finish, err := outFile(out, stdout)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := store.Decrypt(seg.Name, io.MultiWriter(w, h))
	if ferr := finish(err == nil); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	entry.Outcome, entry.Detail = "ok", fmt.Sprintf("segment %s exported to %s (%d bytes)", seg.Name, filepath.Base(out), n)
	entry.Fields["sha256"] = sum
	e, err := al.Append(entry)
	if err != nil {
		os.Remove(out)
		return err
	}
	side := ExportSidecar{Site: cfg.Site.Name, Controller: cfg.Site.Controller, Gateway: cfg.Gateway, Camera: seg.Camera, Segment: seg.Name,
		Start: seg.Start, SHA256: sum, Bytes: n, JudicialRef: ref, Operator: op.Name, ExportedAt: time.Now().UTC(), Masked: true, AuditSeq: e.Seq}
	b, _ := json.MarshalIndent(side, "", "  ")
	if err := safefile.WriteFile(out+".json", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s to %s (%d bytes, sha256 %s, audit seq %d)\n", seg.Name, out, n, sum, e.Seq)
	return nil
}
