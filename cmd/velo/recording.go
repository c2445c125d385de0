package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"velo/agent"
	"velo/agent/audit"
	"velo/agent/retention"
)

// cmdRecording: the recorded (masked, sealed) segments, for authorised
// operators only, every use audited (G-3.3.1 b, ER-4.4, ER-4.5, ER-4.6,
// G-4.6(1)). Refusals are audited too.
func cmdRecording(args []string, stdout, stderr io.Writer) error {
	subs := map[string]string{
		"list":    "velo recording list: list recorded segments (camera, start, size, age, expiry, hold) of the cameras assigned to the operator. Roles: recording-viewer, exporter, admin.",
		"view":    "velo recording view: decrypt one segment to --out (default stdout, e.g. | ffplay -) to watch it. Needs a reason from ER-4.4's list and its reference. Roles: recording-viewer, admin.",
		"export":  "velo recording export: copy one segment (masked, as recorded) to --out with a JSON sidecar (SHA-256, reference, operator), only on a judicial request (ER-4.6). Role: exporter.",
		"hold":    "velo recording hold: put a legal hold on a segment (it survives its retention until released), with the judicial reference (ER-4.5). Roles: exporter, admin.",
		"release": "velo recording release: release a legal hold (the segment is deleted at the next sweep if expired). Roles: exporter, admin.",
	}
	if len(args) == 0 || subs[args[0]] == "" {
		return usageError{"recording: subcommands are list, view, export, hold and release"}
	}
	sub := args[0]
	fs := newFlags("recording "+sub, stderr, subs[sub])
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config")
	opName := fs.String("operator", "", "operator name (required)")
	pwFile := fs.String("password-file", "", "file whose first line is the operator's password (required)")
	var camera, segment, reason, ref, out *string
	var asJSON *bool
	switch sub {
	case "list":
		camera = fs.String("camera", "", "only this camera")
		asJSON = fs.Bool("json", false, "JSON output")
	default:
		segment = fs.String("segment", "", "segment name, as `velo recording list` prints it (required)")
	}
	switch sub {
	case "view":
		reason = fs.String("reason", "", "maintenance | police-request | court-request | authority-inspection | data-subject-request (required)")
		ref = fs.String("ref", "", "reference of the request, order, inspection or ticket (required)")
		out = fs.String("out", "-", "file to write, - for stdout")
	case "export":
		ref = fs.String("ref", "", "judicial reference (required: copies only on a judicial request)")
		out = fs.String("out", "", "file to write (required; a .json sidecar is written beside it)")
	case "hold":
		ref = fs.String("ref", "", "judicial reference (required)")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *opName == "" || *pwFile == "" {
		return usageError{"recording " + sub + ": --operator and --password-file are required"}
	}
	cfg, err := agent.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Outputs.RecordDir == "" {
		return fmt.Errorf("recording: %s records nothing (outputs.record_dir is not set)", *cfgPath)
	}
	al, err := agent.OpenAudit(cfg)
	if err != nil {
		return err
	}
	entry := audit.Entry{Actor: *opName, Action: map[string]string{"list": "recording_list", "view": "recording_access", "export": "export",
		"hold": "hold_set", "release": "hold_released"}[sub]}
	if segment != nil {
		entry.Fields = map[string]string{"segment": *segment}
	}
	if reason != nil {
		entry.Reason = *reason
	}
	if ref != nil {
		entry.Ref = *ref
	}
	// refused audits and returns a refusal.
	refused := func(err error) error {
		entry.Outcome, entry.Detail = "refused", err.Error()
		if _, aerr := al.Append(entry); aerr != nil {
			return fmt.Errorf("recording: %v (and the audit entry failed: %v)", err, aerr)
		}
		return fmt.Errorf("recording %s: refused: %w", sub, err)
	}
	pw, err := readOperatorPassword(*pwFile)
	if err != nil {
		return err
	}
	op, err := cfg.Authenticate(*opName, pw)
	if err != nil {
		return refused(err)
	}
	store, err := retention.ReadOnly(cfg.Outputs.RecordDir, cfg.StateDir)
	if err != nil {
		return err
	}
	if sub == "list" {
		return recordingList(cfg, op, store, *camera, *asJSON, al, entry, refused, stdout)
	}
	var seg *retention.Segment
	for _, g := range store.Segments() {
		if g.Name == *segment {
			seg = &g
			break
		}
	}
	if seg == nil {
		return refused(fmt.Errorf("no segment %q", *segment))
	}
	entry.Camera = seg.Camera
	act := map[string]agent.Action{"view": agent.ActRecordingView, "export": agent.ActExport, "hold": agent.ActHold, "release": agent.ActHold}[sub]
	if err := op.May(act, seg.Camera); err != nil {
		return refused(err)
	}
	switch sub {
	case "view":
		if err := agent.CheckReason(*reason, *ref); err != nil {
			return refused(err)
		}
		// Audited before the first byte is shown.
		entry.Outcome, entry.Detail = "ok", fmt.Sprintf("segment %s of %s decrypted for viewing", seg.Name, seg.Start.Format(time.RFC3339))
		if _, err := al.Append(entry); err != nil {
			return err
		}
		w, closeFn, err := outFile(*out, stdout)
		if err != nil {
			return err
		}
		_, err = store.Decrypt(seg.Name, w)
		if cerr := closeFn(); err == nil {
			err = cerr
		}
		return err
	case "export":
		if *ref == "" {
			return refused(errors.New("--ref: a judicial reference is required (ER-4.6: copies only on a judicial request)"))
		}
		if *out == "" || *out == "-" {
			return usageError{"recording export: --out FILE is required"}
		}
		return recordingExport(cfg, op, store, seg, *ref, *out, al, entry, stdout)
	case "hold":
		err := retention.SetHold(cfg.Outputs.RecordDir, cfg.StateDir, retention.Hold{Segment: seg.Name, Ref: *ref, By: op.Name, At: time.Now().UTC()})
		if err != nil {
			return refused(err)
		}
		entry.Outcome, entry.Detail = "ok", fmt.Sprintf("legal hold on %s: kept past its retention until released", seg.Name)
		_, err = al.Append(entry)
		fmt.Fprintf(stdout, "held %s (ref %s)\n", seg.Name, *ref)
		return err
	default: // release
		h, err := retention.ReleaseHold(cfg.StateDir, seg.Name)
		if err != nil {
			return refused(err)
		}
		entry.Outcome, entry.Ref, entry.Detail = "ok", h.Ref, fmt.Sprintf("legal hold on %s released (set by %s at %s)", seg.Name, h.By, h.At.Format(time.RFC3339))
		_, err = al.Append(entry)
		fmt.Fprintf(stdout, "released %s\n", seg.Name)
		return err
	}
}

func outFile(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("recording: %w", err)
	}
	return f, func() error {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}

type listed struct {
	retention.Segment
	AgeS      int64  `json:"age_s"`
	ExpiresS  int64  `json:"expires_in_s"`
	Retention string `json:"retention"`
	Hold      string `json:"hold_ref,omitempty"`
}

func recordingList(cfg *agent.Config, op *agent.OperatorConfig, store *retention.Store, camera string, asJSON bool, al *audit.Log, entry audit.Entry, refused func(error) error, stdout io.Writer) error {
	if err := op.May(agent.ActRecordingList, camera); err != nil {
		return refused(err)
	}
	holds, err := retention.ReadHolds(cfg.StateDir)
	if err != nil {
		return err
	}
	var rows []listed
	for _, g := range store.Segments() {
		if camera != "" && g.Camera != camera || op.May(agent.ActRecordingList, g.Camera) != nil {
			continue
		}
		r := agent.DefaultRetention
		if c := cfg.Camera(g.Camera); c != nil {
			r = time.Duration(c.Record.Retention)
		}
		age := store.Age(g)
		rows = append(rows, listed{Segment: g, AgeS: int64(age.Seconds()), ExpiresS: int64((r - age).Seconds()), Retention: r.String(), Hold: holds[g.Name].Ref})
	}
	entry.Camera, entry.Outcome, entry.Detail = camera, "ok", fmt.Sprintf("%d segments listed", len(rows))
	if _, err := al.Append(entry); err != nil {
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

func recordingExport(cfg *agent.Config, op *agent.OperatorConfig, store *retention.Store, seg *retention.Segment, ref, out string, al *audit.Log, entry audit.Entry, stdout io.Writer) error {
	w, closeFn, err := outFile(out, stdout)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := store.Decrypt(seg.Name, io.MultiWriter(w, h))
	if cerr := closeFn(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
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
	if err := os.WriteFile(out+".json", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s to %s (%d bytes, sha256 %s, audit seq %d)\n", seg.Name, out, n, sum, e.Seq)
	return nil
}
