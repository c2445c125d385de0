package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/agent/ptzlock"
	"velo/internal/safefile"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/masking/viewcheck"
)

func viewCommand(s streams) *ffcli.Command {
	return group("velo view", "record the reference pictures that every frame is verified against",
		`Every frame of an approved view is checked against that view's
reference picture before it is encoded: a picture that is shifted,
rotated, zoomed, covered, defocused or of another scene is never sent.
'velo view capture' records the reference when a view is commissioned.`,
		viewCaptureCommand(s))
}

type viewCaptureOptions struct {
	config, operator, pwFile string
	camera, preset, backend  string
	night, replace           bool
	timeout                  time.Duration
	stateDir                 string // from the config: whose owner the references get
}

func viewCaptureCommand(s streams) *ffcli.Command {
	fs := newFlagSet("view capture")
	o := &viewCaptureOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "site config `FILE`")
	fs.StringVar(&o.operator, "operator", "", "operator `NAME`: installer or admin (required)")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` whose first line is the operator's password (required)")
	fs.StringVar(&o.camera, "camera", "", "camera `ID` (required)")
	fs.StringVar(&o.preset, "preset", "", "approved preset `TOKEN` of a PTZ camera (\"\" for a fixed camera)")
	fs.BoolVar(&o.night, "night", false, "the night (IR, monochrome) reference of the view")
	fs.BoolVar(&o.replace, "replace", false, "replace an existing reference (audited with both hashes)")
	fs.StringVar(&o.backend, "backend", "auto", "capture `BACKEND`: auto (GStreamer, then FFmpeg), gstreamer or ffmpeg")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return &ffcli.Command{
		Name:       "capture",
		ShortUsage: synopsis("velo view capture", fs, ""),
		ShortHelp:  "record an approved view's reference picture",
		LongHelp: `Grab a frame of the camera's approved view and keep it as the view's
reference: low resolution, with the view's masked regions excluded (the
reference holds nothing a mask hides). A PTZ camera must report the
preset's approved position before and after the frame is read (it is not
moved: move it with 'velo command … preset/apply' first); a fixed camera
with PTZ also records its position, and is locked to it. The reference's
SHA-256 goes into the audit log and the dossier. Roles: installer, admin.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

func (o *viewCaptureOptions) run(ctx context.Context, s streams) error {
	if o.operator == "" || o.pwFile == "" || o.camera == "" {
		return usageError{msg: "view capture: --operator, --password-file and --camera are required"}
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	cam := cfg.Camera(o.camera)
	if cam == nil {
		return fmt.Errorf("view capture: no camera %q in %s", o.camera, o.config)
	}
	set, ok := viewMaskSet(cam, o.preset)
	if !ok {
		return fmt.Errorf("view capture: camera %q has no approved preset %q", cam.ID, o.preset)
	}
	entry := audit.Entry{Actor: o.operator, Action: "view_capture", Camera: cam.ID, Fields: map[string]string{"preset": o.preset}}
	op, al, err := authenticate(cfg, o.operator, o.pwFile, entry, access.ActViewCapture, cam.ID)
	if err != nil {
		return err
	}
	path := cfg.ReferencePath(cam.ID, o.preset, o.night)
	o.stateDir = cfg.StateDir
	refuse := func(err error) error {
		entry.Outcome, entry.Detail = "refused", err.Error()
		if _, aerr := al.Append(entry); aerr != nil {
			return fmt.Errorf("view capture: %v (and the audit entry failed: %v)", err, aerr)
		}
		return fmt.Errorf("view capture: camera %q: %w", cam.ID, err)
	}
	old, err := o.existing(path)
	if err != nil {
		return refuse(err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	ref, err := o.capture(ctx, cam, set)
	if err != nil {
		return refuse(err)
	}
	return o.save(s, al, op, entry, ref, path, old)
}

// viewMaskSet is the mask set of a camera's view (preset "" for a fixed
// camera).
func viewMaskSet(cam *config.CameraConfig, preset string) (set maskspec.MaskSet, ok bool) {
	for _, s := range cam.MaskSets() {
		if s.Preset == preset {
			return s, true
		}
	}
	return set, false
}

// existing returns the SHA-256 of a reference already at path ("" if none);
// replacing one needs --replace.
func (o *viewCaptureOptions) existing(path string) (string, error) {
	old, err := viewcheck.Load(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	case err != nil:
		if !o.replace {
			return "", fmt.Errorf("%v (--replace writes a new one)", err)
		}
		return "unreadable", nil
	case !o.replace:
		return "", fmt.Errorf("%s exists (SHA-256 %s): --replace to record a new reference", path, old.SHA256())
	}
	return old.SHA256(), nil
}

// capture grabs a frame of the approved view: the camera must be at the
// approved position before and after the frame is read.
func (o *viewCaptureOptions) capture(ctx context.Context, cam *config.CameraConfig, set maskspec.MaskSet) (*viewcheck.Reference, error) {
	sn := &snapshotter{backend: masking.Backend(o.backend), timeout: o.timeout}
	r, err := sn.rig(ctx, cam)
	if r != nil {
		defer r.cl.CloseIdleConnections()
	}
	if err != nil {
		return nil, err
	}
	check, pos, err := o.positionCheck(ctx, r, cam)
	if err != nil {
		return nil, err
	}
	f, err := readSettled(ctx, r.open)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, fmt.Errorf("the camera left the view while the frame was read: %w", err)
		}
	}
	return viewcheck.NewReference(f, set, o.night, pos)
}

// positionCheck says how the camera's position is checked: a PTZ camera's
// preset position (refused while off it), a fixed camera with PTZ: its
// position now, recorded in the reference.
func (o *viewCaptureOptions) positionCheck(ctx context.Context, r *viewRig, cam *config.CameraConfig) (func() error, *viewcheck.Position, error) {
	for _, p := range cam.Presets {
		if p.Token == o.preset {
			check := func() error { return r.atPreset(ctx, p) }
			if err := check(); err != nil {
				return nil, nil, fmt.Errorf("refused while off the approved position: %w", err)
			}
			return check, &viewcheck.Position{Pan: p.Position.Pan, Tilt: p.Position.Tilt, Zoom: p.Position.Zoom}, nil
		}
	}
	if !r.hasPTZ {
		return nil, nil, nil
	}
	st, err := r.cl.GetStatus(ctx, r.profile)
	if err != nil {
		return nil, nil, err
	}
	pos, ok := ptzlock.StatusPosition(st)
	if !ok {
		return nil, nil, errors.New("the camera has PTZ but reports no position")
	}
	return nil, &viewcheck.Position{Pan: pos.Pan, Tilt: pos.Tilt, Zoom: pos.Zoom}, nil
}

// save writes the reference and audits it with its hash (and the
// replaced one's).
func (o *viewCaptureOptions) save(s streams, al *audit.Log, op *config.OperatorConfig, entry audit.Entry, ref *viewcheck.Reference, path, old string) error {
	if err := saveReference(ref, o.stateDir, path); err != nil {
		return fmt.Errorf("view capture: %w", err)
	}
	entry.Actor, entry.Outcome = op.Name, "ok"
	entry.Fields["sha256"], entry.Fields["file"] = ref.SHA256(), path
	entry.Fields["light"] = map[bool]string{false: "day", true: "night"}[o.night]
	if old != "" {
		entry.Fields["replaced_sha256"] = old
	}
	if _, err := al.Append(entry); err != nil {
		return fmt.Errorf("view capture: written, but the audit entry failed: %w", err)
	}
	fmt.Fprintf(s.stdout, "wrote %s: camera %q, preset %q, %s, sha256 %s\n", path, o.camera, o.preset, entry.Fields["light"], ref.SHA256())
	return nil
}

// saveReference writes the reference (mode 0644, replaced whole, never
// through a link). Run as root, the file and its two folders get the
// owner of the state directory, so the velo service (which owns its state
// directory) can read what root captured; the owner is set through the
// open file and folders, never through a path the service could have
// turned into a link.
func saveReference(ref *viewcheck.Reference, stateDir, path string) error {
	b, err := ref.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	uid, gid, chown := stateDirOwner(stateDir)
	if chown {
		for _, d := range []string{filepath.Dir(filepath.Dir(path)), filepath.Dir(path)} {
			if err := chownDir(d, uid, gid); err != nil {
				return err
			}
		}
	}
	f, err := safefile.Create(path, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return err
	}
	if chown {
		if err := f.Chown(uid, gid); err != nil {
			f.Abort()
			return err
		}
	}
	return f.Commit()
}

// stateDirOwner is the owner of the state directory when run as root and
// it is not root (chown says so).
func stateDirOwner(stateDir string) (uid, gid int, chown bool) {
	if os.Geteuid() != 0 {
		return 0, 0, false
	}
	st, err := os.Stat(stateDir)
	if err != nil {
		return 0, 0, false // no state directory yet: velo run creates it, as root
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return 0, 0, false
	}
	return int(sys.Uid), int(sys.Gid), true
}

// chownDir sets a folder's owner through its descriptor; a link in its
// place is refused.
func chownDir(dir string, uid, gid int) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chown(uid, gid)
}
