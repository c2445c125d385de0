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

	"velo/agent"
	"velo/agent/audit"
	"velo/agent/dossier"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
)

// cmdDossier writes the site dossier (TN, ER-4.7): it reads each camera's
// identity, takes a masked snapshot of each approved view (moving a PTZ
// camera through its approved presets), and renders PDF, HTML or JSON.
// Only installers and admins may make it; it is audited.
func cmdDossier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dossier", stderr, "velo dossier: write the site dossier for the authorisation request (TN): per camera its purpose, identity and firmware, location, approved views with approvals, a masked snapshot of each view, masks, retention, schedule, recording, who may do what; the controller, purposes and an audit summary. Roles: installer, admin. Run it with the agent stopped: it moves PTZ cameras through their approved presets (or use --no-move).")
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config")
	opName := fs.String("operator", "", "operator name (required)")
	pwFile := fs.String("password-file", "", "file whose first line is the operator's password (required)")
	out := fs.String("out", "", "file to write (required; - for stdout)")
	format := fs.String("format", "", "pdf, html or json (default: from --out's extension, else pdf)")
	noMove := fs.Bool("no-move", false, "do not move PTZ cameras: snapshot only the approved view each camera is at (the others are gaps)")
	allowGaps := fs.Bool("allow-gaps", false, "write the dossier even if a camera's identity or a snapshot could not be read (each gap is printed in red in it)")
	backend := fs.String("backend", "auto", "capture backend: auto (GStreamer, then FFmpeg), gstreamer or ffmpeg")
	timeout := fs.Duration("timeout", 90*time.Second, "give up on a camera after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || *opName == "" || *pwFile == "" {
		return usageError{"dossier: --out, --operator and --password-file are required"}
	}
	if *format == "" {
		*format = strings.TrimPrefix(strings.ToLower(filepath.Ext(*out)), ".")
		if *format != "html" && *format != "json" {
			*format = "pdf"
		}
	}
	if *format != "pdf" && *format != "html" && *format != "json" {
		return usageError{fmt.Sprintf("dossier: --format %q is not pdf, html or json", *format)}
	}
	cfg, err := agent.Load(*cfgPath)
	if err != nil {
		return err
	}
	if _, err := (masking.CaptureConfig{URL: "rtsp://x/", Backend: masking.Backend(*backend)}).Opener(); err != nil {
		return usageError{"dossier: " + err.Error()}
	}
	op, al, err := authenticate(cfg, *opName, *pwFile, audit.Entry{Actor: *opName, Action: "dossier"}, agent.ActDossier, "")
	if err != nil {
		return err
	}
	// A running agent's PTZ lock would revert the moves (and report them
	// as drift): refuse to move while it holds the state dir.
	moveErr := error(nil)
	if !*noMove && agentRunning(cfg.StateDir) {
		moveErr = fmt.Errorf("velo run is using %s: its PTZ lock would revert the moves; stop it (systemctl stop velo) or use --no-move", cfg.StateDir)
	}
	snap := &snapshotter{backend: masking.Backend(*backend), timeout: *timeout, noMove: *noMove, moveErr: moveErr, stderr: stderr}
	src := dossier.Sources{
		Identity: func(ctx context.Context, cam *agent.CameraConfig) (onvif.DeviceInfo, error) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			cl, info, err := cam.Connect(ctx)
			if err != nil {
				return info, err
			}
			cl.CloseIdleConnections()
			return info, nil
		},
		Snapshots: snap.views,
	}
	d, err := dossier.Build(ctx, cfg, *cfgPath, op.Name, "velo "+version, src, time.Now())
	if err != nil {
		return err
	}
	if len(d.Gaps) > 0 && !*allowGaps {
		return fmt.Errorf("dossier: incomplete, nothing written (use --allow-gaps to write it with the gaps marked):\n  %s", strings.Join(d.Gaps, "\n  "))
	}
	var buf bytes.Buffer
	switch *format {
	case "pdf":
		err = dossier.PDF(&buf, d)
	case "html":
		err = dossier.HTML(&buf, d)
	default:
		err = dossier.JSON(&buf, d)
	}
	if err != nil {
		return err
	}
	if err := writeOut(*out, buf.Bytes(), stdout); err != nil {
		return fmt.Errorf("dossier: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	var views []string
	for _, c := range d.Cameras {
		for _, v := range c.Views {
			if v.Snapshot != nil {
				views = append(views, c.ID+"/"+v.Preset)
			}
		}
	}
	e, err := al.Append(audit.Entry{Actor: op.Name, Action: "dossier", Outcome: "ok",
		Detail: fmt.Sprintf("%s dossier of %d cameras, %d gaps", *format, len(d.Cameras), len(d.Gaps)),
		Fields: map[string]string{"sha256": hex.EncodeToString(sum[:]), "snapshots": strings.Join(views, " "), "out": *out}})
	if err != nil {
		return fmt.Errorf("dossier: written, but the audit entry failed: %w", err)
	}
	if *out != "-" {
		fmt.Fprintf(stdout, "wrote %s (%s, %d bytes, SHA-256 %s): %d cameras, %d masked snapshots, %d gaps; audit seq %d\n",
			*out, *format, buf.Len(), hex.EncodeToString(sum[:8]), len(d.Cameras), len(views), len(d.Gaps), e.Seq)
	}
	return nil
}

// cmdSign writes a camera's information sign (G-3.1, ER-4.8) as PDF or
// PNG, A4 or A3. It needs no camera access and no operator: it says only
// what the config says.
func cmdSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sign", stderr, "velo sign: write the information sign for a camera (G-3.1, ER-4.8), in Italian and English: controller, purpose, recorded or not (and for how long), police link (second model), where to exercise rights. PNG needs pdftoppm (poppler-utils).")
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config")
	camID := fs.String("camera", "", "camera id (required)")
	out := fs.String("out", "", "sign.pdf or sign.png (required)")
	size := fs.String("size", "A4", "A4 or A3")
	dpi := fs.Int("dpi", 150, "PNG resolution")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *camID == "" || *out == "" {
		return usageError{"sign: --camera and --out are required"}
	}
	*size = strings.ToUpper(*size)
	if *size != "A4" && *size != "A3" {
		return usageError{fmt.Sprintf("sign: --size %q is not A4 or A3", *size)}
	}
	ext := strings.ToLower(filepath.Ext(*out))
	if ext != ".pdf" && ext != ".png" {
		return usageError{fmt.Sprintf("sign: --out %q: write a .pdf or a .png", *out)}
	}
	if *dpi < 50 || *dpi > 600 {
		return usageError{fmt.Sprintf("sign: --dpi %d out of 50..600", *dpi)}
	}
	cfg, err := agent.LoadUnchecked(*cfgPath) // a sign needs no secret
	if err != nil {
		return err
	}
	cam := cfg.Camera(*camID)
	if cam == nil {
		return fmt.Errorf("sign: %s has no camera %q", *cfgPath, *camID)
	}
	var buf bytes.Buffer
	if err := dossier.Sign(&buf, cfg, cam, *size, "velo "+version, time.Now()); err != nil {
		return fmt.Errorf("%w (%s)", err, *cfgPath)
	}
	data := buf.Bytes()
	if ext == ".png" {
		if data, err = dossier.PNG(data, *dpi); err != nil {
			return err
		}
	}
	if err := writeOut(*out, data, stdout); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: sign for camera %q, %s, %d bytes\n", *out, cam.ID, *size, len(data))
	return nil
}

// writeOut writes data to path (0640, through a temp file) or stdout.
func writeOut(path string, data []byte, stdout io.Writer) error {
	if path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// authenticate checks the operator's password and permission (on camera,
// if not empty); refusals are audited.
func authenticate(cfg *agent.Config, name, pwFile string, entry audit.Entry, act agent.Action, camera string) (*agent.OperatorConfig, *audit.Log, error) {
	al, err := agent.OpenAudit(cfg)
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
func (s *snapshotter) views(ctx context.Context, cam *agent.CameraConfig) (map[string]*dossier.Snapshot, map[string]error) {
	snaps, errs := map[string]*dossier.Snapshot{}, map[string]error{}
	failAll := func(err error) (map[string]*dossier.Snapshot, map[string]error) {
		for _, set := range cam.MaskSets() {
			errs[set.Preset] = err
		}
		return snaps, errs
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cl, _, err := cam.Connect(ctx)
	if err != nil {
		return failAll(err)
	}
	defer cl.CloseIdleConnections()
	uri, prof, err := agent.ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if err != nil {
		return failAll(err)
	}
	m, err := masking.NewMasker(cam.ID, maskspec.FailDrop)
	if err != nil {
		return failAll(err)
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets(cam.MaskSets()); err != nil {
		return failAll(err)
	}
	cc := cam.Capture(uri)
	cc.Backend = s.backend
	open, err := cc.Opener()
	if err != nil {
		return failAll(err)
	}
	if len(cam.Presets) == 0 {
		m.SetView("", true)
		snaps[""], errs[""] = grab(ctx, open, m, nil)
		if errs[""] != nil {
			delete(snaps, "")
		}
		return snaps, errs
	}
	inside := func(p agent.PresetConfig) error {
		st, err := cl.GetStatus(ctx, prof.Token)
		if err != nil {
			return err
		}
		pos, ok := agent.StatusPosition(st)
		if !ok {
			return errors.New("the camera reports no position")
		}
		d := math.Max(math.Abs(pos.Pan-p.Position.Pan), math.Max(math.Abs(pos.Tilt-p.Position.Tilt), math.Abs(pos.Zoom-p.Position.Zoom)))
		if d > p.Tolerance {
			return fmt.Errorf("the camera is off preset %q by %.3f (pan %.3f tilt %.3f zoom %.3f; tolerance %.3f)", p.Token, d, pos.Pan, pos.Tilt, pos.Zoom, p.Tolerance)
		}
		return nil
	}
	home := cam.Presets[0].Token
	for _, p := range cam.Presets {
		if inside(p) == nil {
			home = p.Token
		}
	}
	moved := false
	for _, p := range cam.Presets {
		check := func() error { return inside(p) }
		if err := check(); err != nil {
			switch {
			case s.noMove:
				errs[p.Token] = fmt.Errorf("%v (--no-move)", err)
				continue
			case s.moveErr != nil:
				errs[p.Token] = s.moveErr
				continue
			}
			if err := cl.GotoPreset(ctx, prof.Token, p.Token); err != nil {
				errs[p.Token] = fmt.Errorf("GotoPreset: %w", err)
				continue
			}
			moved = true
			if err := waitFor(ctx, check, 20*time.Second); err != nil {
				errs[p.Token] = fmt.Errorf("not at the approved position after GotoPreset: %w", err)
				continue
			}
		}
		m.SetView(p.Token, true)
		snap, err := grab(ctx, open, m, check)
		m.SetView("", false)
		if err != nil {
			errs[p.Token] = err
			continue
		}
		snaps[p.Token] = snap
	}
	if moved {
		if err := cl.GotoPreset(ctx, prof.Token, home); err != nil {
			fmt.Fprintf(s.stderr, "velo: dossier: camera %q: could not return to preset %q: %v\n", cam.ID, home, err)
		}
	}
	return snaps, errs
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
	if check != nil {
		if err := check(); err != nil {
			return nil, fmt.Errorf("the camera left the view while the snapshot was taken: %w", err)
		}
	}
	if v, why := m.Process(f); v != masking.Masked {
		return nil, fmt.Errorf("frame not masked (%s)", why)
	}
	return dossier.NewSnapshot(f, 85)
}
