package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/camera"
	"velo/agent/config"
	"velo/agent/dossier"
	"velo/agent/ptzlock"
	"velo/internal/safefile"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
)

type dossierOptions struct {
	config, operator, pwFile string
	out, format, backend     string
	noMove, allowGaps        bool
	timeout                  time.Duration
}

// dossierCommand writes the site dossier (TN, ER-4.7): it reads each
// camera's identity, takes a masked snapshot of each approved view
// (moving a PTZ camera through its approved presets), and renders PDF,
// HTML or JSON. Only installers and admins may make it; it is audited.
func dossierCommand(s streams) *ffcli.Command {
	fs := newFlagSet("dossier")
	o := &dossierOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "site config `FILE`")
	fs.StringVar(&o.operator, "operator", "", "operator `NAME` (required)")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` whose first line is the operator's password (required)")
	fs.StringVar(&o.out, "out", "", "`FILE` to write (required; - for standard output)")
	fs.StringVar(&o.format, "format", "", "`FORMAT`: pdf, html or json (default: from --out's extension, else pdf)")
	fs.BoolVar(&o.noMove, "no-move", false, "do not move PTZ cameras: snapshot only the approved view each camera is at (the others are gaps)")
	fs.BoolVar(&o.allowGaps, "allow-gaps", false, "write the dossier even if a camera's identity or a snapshot could not be read (each gap is printed in red in it)")
	fs.StringVar(&o.backend, "backend", "auto", "capture `BACKEND`: auto (GStreamer, then FFmpeg), gstreamer or ffmpeg")
	fs.DurationVar(&o.timeout, "timeout", 90*time.Second, "give up on a camera after this long")
	return &ffcli.Command{
		Name:       "dossier",
		ShortUsage: synopsis("velo dossier", fs, ""),
		ShortHelp:  "write the site dossier for the authorisation request",
		LongHelp: `Write the site dossier for the authorisation request (TN): per camera
its purpose, identity and firmware, location, approved views with their
approvals, a masked snapshot of each view, masks, retention, schedule,
recording, who may do what; the controller, purposes and an audit
summary. Roles: installer, admin. Audited.

It moves PTZ cameras through their approved presets: stop velo run
first (systemctl stop velo), or use --no-move.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *dossierOptions) run(ctx context.Context, s streams) error {
	if err := o.check(); err != nil {
		return err
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	if _, err := (masking.CaptureConfig{URL: "rtsp://x/", Backend: masking.Backend(o.backend)}).Opener(); err != nil {
		return usageError{msg: "dossier: " + err.Error()}
	}
	op, al, err := authenticate(cfg, o.operator, o.pwFile, audit.Entry{Actor: o.operator, Action: "dossier"}, access.ActDossier, "")
	if err != nil {
		return err
	}
	d, err := dossier.Build(ctx, cfg, o.config, op.Name, "velo "+version, o.sources(cfg, s.stderr), time.Now())
	if err != nil {
		return err
	}
	if len(d.Gaps) > 0 && !o.allowGaps {
		return fmt.Errorf("dossier: incomplete, nothing written (use --allow-gaps to write it with the gaps marked):\n  %s", strings.Join(d.Gaps, "\n  "))
	}
	data, err := renderDossier(o.format, d)
	if err != nil {
		return err
	}
	if err := writeOut(o.out, data, s.stdout); err != nil {
		return fmt.Errorf("dossier: %w", err)
	}
	return o.audited(s, al, op, d, data)
}

// check checks the required flags and settles the format.
func (o *dossierOptions) check() error {
	if o.out == "" || o.operator == "" || o.pwFile == "" {
		return usageError{msg: "dossier: --out, --operator and --password-file are required"}
	}
	if o.format == "" {
		o.format = strings.TrimPrefix(strings.ToLower(filepath.Ext(o.out)), ".")
		if o.format != "html" && o.format != "json" {
			o.format = "pdf"
		}
	}
	if o.format != "pdf" && o.format != "html" && o.format != "json" {
		return usageError{msg: fmt.Sprintf("dossier: --format %q is not pdf, html or json", o.format)}
	}
	return nil
}

// sources read each camera's identity and snapshots. A running agent's
// PTZ lock would revert the moves (and report them as drift): they
// refuse to move while it holds the state dir.
func (o *dossierOptions) sources(cfg *config.Config, stderr io.Writer) dossier.Sources {
	moveErr := error(nil)
	if !o.noMove && agentRunning(cfg.StateDir) {
		moveErr = fmt.Errorf("velo run is using %s: its PTZ lock would revert the moves; stop it (systemctl stop velo) or use --no-move", cfg.StateDir)
	}
	snap := &snapshotter{backend: masking.Backend(o.backend), timeout: o.timeout, noMove: o.noMove, moveErr: moveErr, stderr: stderr}
	return dossier.Sources{
		Identity: func(ctx context.Context, cam *config.CameraConfig) (onvif.DeviceInfo, error) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			cl, info, err := camera.Connect(ctx, cam)
			if err != nil {
				return info, err
			}
			cl.CloseIdleConnections()
			return info, nil
		},
		Snapshots: snap.views,
	}
}

func renderDossier(format string, d *dossier.Dossier) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "pdf":
		err = dossier.PDF(&buf, d)
	case "html":
		err = dossier.HTML(&buf, d)
	default:
		err = dossier.JSON(&buf, d)
	}
	return buf.Bytes(), err
}

// audited audits the written dossier (its hash and the views it shows)
// and says what was written.
func (o *dossierOptions) audited(s streams, al *audit.Log, op *config.OperatorConfig, d *dossier.Dossier, data []byte) error {
	sum := sha256.Sum256(data)
	var views []string
	for _, c := range d.Cameras {
		for _, v := range c.Views {
			if v.Snapshot != nil {
				views = append(views, c.ID+"/"+v.Preset)
			}
		}
	}
	e, err := al.Append(audit.Entry{Actor: op.Name, Action: "dossier", Outcome: "ok",
		Detail: fmt.Sprintf("%s dossier of %d cameras, %d gaps", o.format, len(d.Cameras), len(d.Gaps)),
		Fields: map[string]string{"sha256": hex.EncodeToString(sum[:]), "snapshots": strings.Join(views, " "), "out": o.out}})
	if err != nil {
		return fmt.Errorf("dossier: written, but the audit entry failed: %w", err)
	}
	if o.out != "-" {
		fmt.Fprintf(s.stdout, "wrote %s (%s, %d bytes, SHA-256 %s): %d cameras, %d masked snapshots, %d gaps; audit seq %d\n",
			o.out, o.format, len(data), hex.EncodeToString(sum[:8]), len(d.Cameras), len(views), len(d.Gaps), e.Seq)
	}
	return nil
}

type signOptions struct {
	config, camera, out, size string
	dpi                       int
}

// signCommand writes a camera's information sign (G-3.1, ER-4.8) as PDF
// or PNG, A4 or A3. It needs no camera access and no operator: it says
// only what the config says.
func signCommand(s streams) *ffcli.Command {
	fs := newFlagSet("sign")
	o := &signOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "site config `FILE`")
	fs.StringVar(&o.camera, "camera", "", "camera `ID` (required)")
	fs.StringVar(&o.out, "out", "", "`FILE`: sign.pdf or sign.png (required)")
	fs.StringVar(&o.size, "size", "A4", "paper `SIZE`: A4 or A3")
	fs.IntVar(&o.dpi, "dpi", 150, "PNG resolution")
	return &ffcli.Command{
		Name:       "sign",
		ShortUsage: synopsis("velo sign", fs, ""),
		ShortHelp:  "write a camera's information sign",
		LongHelp: `Write the information sign for a camera (G-3.1, ER-4.8), in Italian and
English: controller, purpose, recorded or not (and for how long), police
link (second model), where to exercise rights. It needs no camera and no
operator: it says only what the config says. PNG needs pdftoppm
(poppler-utils).`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *signOptions) run(s streams) error {
	ext, err := o.check()
	if err != nil {
		return err
	}
	cfg, err := config.LoadUnchecked(o.config) // a sign needs no secret
	if err != nil {
		return err
	}
	cam := cfg.Camera(o.camera)
	if cam == nil {
		return fmt.Errorf("sign: %s has no camera %q", o.config, o.camera)
	}
	var buf bytes.Buffer
	if err := dossier.Sign(&buf, cfg, cam, o.size, "velo "+version, time.Now()); err != nil {
		return fmt.Errorf("%w (%s)", err, o.config)
	}
	data := buf.Bytes()
	if ext == ".png" {
		if data, err = dossier.PNG(data, o.dpi); err != nil {
			return err
		}
	}
	if err := writeOut(o.out, data, s.stdout); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintf(s.stdout, "wrote %s: sign for camera %q, %s, %d bytes\n", o.out, cam.ID, o.size, len(data))
	return nil
}

// check checks the flags, settles the size and returns the output's
// extension.
func (o *signOptions) check() (string, error) {
	if o.camera == "" || o.out == "" {
		return "", usageError{msg: "sign: --camera and --out are required"}
	}
	o.size = strings.ToUpper(o.size)
	if o.size != "A4" && o.size != "A3" {
		return "", usageError{msg: fmt.Sprintf("sign: --size %q is not A4 or A3", o.size)}
	}
	ext := strings.ToLower(filepath.Ext(o.out))
	if ext != ".pdf" && ext != ".png" {
		return "", usageError{msg: fmt.Sprintf("sign: --out %q: write a .pdf or a .png", o.out)}
	}
	if o.dpi < 50 || o.dpi > 600 {
		return "", usageError{msg: fmt.Sprintf("sign: --dpi %d out of 50..600", o.dpi)}
	}
	return ext, nil
}

// writeOut writes data to path (0640, replaced whole, never through a
// link) or stdout.
func writeOut(path string, data []byte, stdout io.Writer) error {
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return safefile.WriteFile(path, data, 0o640)
}

// authenticate checks the operator's password and permission (on camera,
// if not empty); refusals are audited.
func authenticate(cfg *config.Config, name, pwFile string, entry audit.Entry, act access.Action, camera string) (*config.OperatorConfig, *audit.Log, error) {
	al, err := audit.Open(config.AuditDir(cfg), cfg.AuditOptions())
	if err != nil {
		return nil, nil, err
	}
	pw, err := readOperatorPassword(pwFile)
	if err != nil {
		return nil, nil, err
	}
	op, err := cfg.Authenticate(name, pw)
	if err == nil {
		err = op.May(act, camera)
	}
	if err != nil {
		entry.Outcome, entry.Detail = "refused", err.Error()
		if _, aerr := al.Append(entry); aerr != nil {
			return nil, nil, fmt.Errorf("%s: %v (and the audit entry failed: %v)", act, err, aerr)
		}
		return nil, nil, fmt.Errorf("%s: refused: %w", act, err)
	}
	return op, al, nil
}

// agentRunning reports whether a velo run holds the outbox in stateDir
// (bbolt keeps an exclusive flock on it while open).
func agentRunning(stateDir string) bool {
	f, err := os.Open(filepath.Join(stateDir, "outbox.db"))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// snapshotter takes the masked snapshots of a camera's approved views.
type snapshotter struct {
	backend masking.Backend
	timeout time.Duration
	noMove  bool
	moveErr error
	stderr  io.Writer
}

// views returns a snapshot per approved view (preset "" for a fixed
// camera) or why there is none. A PTZ camera is moved to each approved
// preset and the frame is used only if the camera reports the approved
// position both before and after it was captured; it is then returned to
// the preset it was found at (or the first).
func (s *snapshotter) views(ctx context.Context, cam *config.CameraConfig) (map[string]*dossier.Snapshot, map[string]error) {
	snaps, errs := map[string]*dossier.Snapshot{}, map[string]error{}
	if err := scheduleActive(cam); err != nil {
		for _, set := range cam.MaskSets() {
			errs[set.Preset] = fmt.Errorf("not taken: %w", err)
		}
		return snaps, errs
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, err := s.rig(ctx, cam)
	if r != nil {
		defer r.cl.CloseIdleConnections()
	}
	if err != nil {
		for _, set := range cam.MaskSets() {
			errs[set.Preset] = err
		}
		return snaps, errs
	}
	if len(cam.Presets) == 0 {
		r.masker.SetView("", true)
		snaps[""], errs[""] = grab(ctx, r.open, r.masker, nil)
		if errs[""] != nil {
			delete(snaps, "")
		}
		return snaps, errs
	}
	home := cam.Presets[0].Token
	for _, p := range cam.Presets {
		if r.atPreset(ctx, p) == nil {
			home = p.Token
		}
	}
	moved := false
	for _, p := range cam.Presets {
		snap, didMove, err := s.presetView(ctx, r, p)
		moved = moved || didMove
		if err != nil {
			errs[p.Token] = err
			continue
		}
		snaps[p.Token] = snap
	}
	if moved {
		if err := r.cl.GotoPreset(ctx, r.profile, home); err != nil {
			fmt.Fprintf(s.stderr, "velo: dossier: camera %q: could not return to preset %q: %v\n", cam.ID, home, err)
		}
	}
	return snaps, errs
}

// viewRig is what snapshots of a camera's views need: its ONVIF client
// and media profile, its stream and a masker with its mask sets.
type viewRig struct {
	cl      *onvif.Client
	profile string
	hasPTZ  bool // the profile has PTZ and the device the service
	open    masking.Opener
	masker  *masking.Masker
}

// rig connects to cam and prepares its stream and masker. The rig it
// returns with an error (if any) still holds the connection to close.
func (s *snapshotter) rig(ctx context.Context, cam *config.CameraConfig) (*viewRig, error) {
	cl, _, err := camera.Connect(ctx, cam)
	if err != nil {
		return nil, err
	}
	r := &viewRig{cl: cl}
	uri, prof, err := camera.ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if err != nil {
		return r, err
	}
	r.profile = prof.Token
	r.hasPTZ = prof.PTZ != nil && cl.HasService(onvif.NSPTZ)
	if r.masker, err = masking.NewMasker(cam.ID, maskspec.FailDrop); err != nil {
		return r, err
	}
	r.masker.SetSettle(0)
	if _, err := r.masker.SetMaskSets(cam.StillMaskSets()); err != nil {
		return r, err
	}
	cc := camera.Capture(cam, uri)
	cc.Backend = s.backend
	r.open, err = cc.Opener()
	return r, err
}

// atPreset checks that the camera reports preset p's approved position.
func (r *viewRig) atPreset(ctx context.Context, p config.PresetConfig) error {
	st, err := r.cl.GetStatus(ctx, r.profile)
	if err != nil {
		return err
	}
	pos, ok := ptzlock.StatusPosition(st)
	if !ok {
		return errors.New("the camera reports no position")
	}
	d := math.Max(math.Abs(pos.Pan-p.Position.Pan), math.Max(math.Abs(pos.Tilt-p.Position.Tilt), math.Abs(pos.Zoom-p.Position.Zoom)))
	if d > p.Tolerance {
		return fmt.Errorf("the camera is off preset %q by %.3f (pan %.3f tilt %.3f zoom %.3f; tolerance %.3f)", p.Token, d, pos.Pan, pos.Tilt, pos.Zoom, p.Tolerance)
	}
	return nil
}

// presetView snapshots preset p's view, moving the camera there first
// unless it is there already (moved says whether it was moved).
func (s *snapshotter) presetView(ctx context.Context, r *viewRig, p config.PresetConfig) (snap *dossier.Snapshot, moved bool, err error) {
	check := func() error { return r.atPreset(ctx, p) }
	if err := check(); err != nil {
		switch {
		case s.noMove:
			return nil, false, fmt.Errorf("%v (--no-move)", err)
		case s.moveErr != nil:
			return nil, false, s.moveErr
		}
		if err := r.cl.GotoPreset(ctx, r.profile, p.Token); err != nil {
			return nil, false, fmt.Errorf("GotoPreset: %w", err)
		}
		moved = true
		if err := waitFor(ctx, check, 20*time.Second); err != nil {
			return nil, moved, fmt.Errorf("not at the approved position after GotoPreset: %w", err)
		}
	}
	r.masker.SetView(p.Token, true)
	snap, err = grab(ctx, r.open, r.masker, check)
	r.masker.SetView("", false)
	return snap, moved, err
}

// waitFor polls f until it returns nil or d passes.
func waitFor(ctx context.Context, f func() error, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(end) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// grab opens the stream, reads for a second (past frames buffered before
// a move), masks the last frame and encodes it. check (if not nil) must
// pass after the frame was read: a camera that moved meanwhile gives no
// snapshot.
func grab(ctx context.Context, open masking.Opener, m *masking.Masker, check func() error) (*dossier.Snapshot, error) {
	f, err := readSettled(ctx, open)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, fmt.Errorf("the camera left the view while the snapshot was taken: %w", err)
		}
	}
	if v, why := m.Process(f); v != masking.Masked {
		return nil, fmt.Errorf("frame not masked (%s)", why)
	}
	jpg, err := masking.JPEG(f, 85)
	if err != nil {
		return nil, err
	}
	return dossier.NewSnapshot(jpg, f.W, f.H, f.Captured, f.Generation), nil
}

// readSettled opens the stream and reads for a second (past frames
// buffered before a move), returning the last frame, raw.
func readSettled(ctx context.Context, open masking.Opener) (*masking.Frame, error) {
	src, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	f := &masking.Frame{}
	var first time.Time
	for {
		if err := src.Read(f); err != nil {
			return nil, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) >= time.Second {
			break
		}
	}
	f.Captured = time.Now()
	return f, nil
}
