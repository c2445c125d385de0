package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/camera"
	"velo/agent/config"
	"velo/internal/safefile"
	"velo/masking"
	"velo/masking/maskspec"
	"velo/onvif"
)

func maskCommand(s streams) *ffcli.Command {
	return group("velo mask", "preview and self-test masking", "", maskPreviewCommand(s), maskSelftestCommand(s))
}

type maskPreviewOptions struct {
	config, camera          string
	stream, user, pwFile    string
	operator, masks, preset string
	backend, out            string
	timeout                 time.Duration
}

func maskPreviewCommand(s streams) *ffcli.Command {
	fs := newFlagSet("mask preview")
	o := &maskPreviewOptions{}
	fs.StringVar(&o.config, "config", "", "site config `FILE`; with --camera, the stream, credentials and masks come from it")
	fs.StringVar(&o.camera, "camera", "", "camera `ID` in the site config")
	fs.StringVar(&o.stream, "stream", "", "camera `RTSP_URL` without credentials (without --camera; velo probe prints it)")
	fs.StringVar(&o.user, "user", "", "camera user `NAME` (with --stream)")
	fs.StringVar(&o.pwFile, "password-file", "", "with --stream: `FILE` whose first line is the camera password; with --config: the operator's password")
	fs.StringVar(&o.operator, "operator", "", "with --config: the operator `NAME` (installer or admin; the preview is audited)")
	fs.StringVar(&o.masks, "masks", "", "mask `FILE` (YAML, see docs/masking.md) (without --camera)")
	fs.StringVar(&o.preset, "preset", "", "approved preset `TOKEN` whose mask set to apply (\"\" for a fixed camera)")
	fs.StringVar(&o.backend, "backend", "auto", "capture `BACKEND`: auto (GStreamer, then FFmpeg), gstreamer or ffmpeg")
	fs.StringVar(&o.out, "out", "", "JPEG `FILE` to write (required)")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "give up after this long")
	return &ffcli.Command{
		Name:       "preview",
		ShortUsage: synopsis("velo mask preview", fs, ""),
		ShortHelp:  "write one masked frame of a camera as a JPEG",
		LongHelp: `Grab one frame, apply the mask set of the preset and write the masked
JPEG, so an installer can check a mask on site. Nothing is written when
the frame cannot be masked. Two forms:

  velo mask preview --config SITE.yaml --operator NAME --password-file F
                    --camera ID [--preset TOKEN] --out FILE.jpg
  velo mask preview --stream RTSP_URL [--user U --password-file F]
                    --masks FILE [--preset TOKEN] --out FILE.jpg

With --config the stream, credentials and masks come from the site
config, the operator (installer, admin) is authenticated and the preview
is audited. It is refused outside the camera's active hours (G-4.3) and,
for a preset, unless the camera reports that preset's approved position
(ER-3.2). A --masks file whose set for the preset has no masks is
refused.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(ctx, s)
		},
	}
}

// previewSource is what a preview masks: the camera's stream and mask
// sets, and (from a site config) the audit log and the operator.
type previewSource struct {
	masks   maskspec.MaskFile
	capture masking.CaptureConfig
	audit   *audit.Log
	op      *config.OperatorConfig
	close   func() // releases the camera connection; never nil
	// atView (if not nil) checks that the camera is at the preset's
	// approved position, before and after the frame is read.
	atView func() error
	// note is said after the output line (a view the config approved
	// without masks).
	note string
}

// scheduleNow is the time camera schedules are checked at (tests set it).
var scheduleNow = time.Now

// scheduleActive refuses a camera outside its active hours (G-4.3): velo
// run does not read it then, and neither do previews and dossiers.
func scheduleActive(cam *config.CameraConfig) error {
	now := scheduleNow()
	if cam.Schedule.Active(now) {
		return nil
	}
	msg := fmt.Sprintf("camera %q is outside its active hours (G-4.3) and is not read then", cam.ID)
	if next := cam.Schedule.NextActive(now, 8*24*time.Hour); next != nil {
		msg += "; on again at " + next.In(cam.Schedule.Location()).Format("2006-01-02 15:04 MST")
	}
	return errors.New(msg)
}

func (o *maskPreviewOptions) run(ctx context.Context, s streams) error {
	if o.out == "" {
		return usageError{msg: "mask preview: --out is required"}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var src previewSource
	var err error
	switch {
	case o.camera != "":
		src, err = o.fromSiteConfig(ctx)
	case o.stream != "" && o.masks != "":
		src, err = o.fromStream()
	default:
		return usageError{msg: "mask preview: give --config and --camera, or --stream and --masks"}
	}
	defer src.close()
	var jpg []byte
	var f *masking.Frame
	if err == nil {
		jpg, f, err = o.maskedFrame(ctx, src)
	}
	if err != nil {
		return o.refused(src, err)
	}
	if err := safefile.WriteFile(o.out, jpg, 0o640); err != nil {
		return fmt.Errorf("mask preview: %w", err)
	}
	if src.audit != nil {
		sum := sha256.Sum256(jpg)
		if _, err := src.audit.Append(audit.Entry{Actor: src.op.Name, Action: "mask_preview", Camera: src.masks.Camera, Outcome: "ok",
			Fields: map[string]string{"preset": o.preset, "sha256": hex.EncodeToString(sum[:]), "out": o.out}}); err != nil {
			return fmt.Errorf("mask preview: written, but the audit entry failed: %w", err)
		}
	}
	fmt.Fprintf(s.stdout, "wrote %s: %dx%d, camera %q, preset %q, generation %d\n", o.out, f.W, f.H, src.masks.Camera, o.preset, f.Generation)
	if src.note != "" {
		fmt.Fprintln(s.stdout, src.note)
	}
	return nil
}

// refused audits a preview refused after the operator was authenticated
// (an authentication refusal is audited where it happens) and returns err.
func (o *maskPreviewOptions) refused(src previewSource, err error) error {
	if src.audit == nil || src.op == nil {
		return err
	}
	if _, aerr := src.audit.Append(audit.Entry{Actor: src.op.Name, Action: "mask_preview", Camera: o.camera, Outcome: "refused",
		Detail: err.Error(), Fields: map[string]string{"preset": o.preset}}); aerr != nil {
		return fmt.Errorf("%w (and the audit entry failed: %v)", err, aerr)
	}
	return err
}

// fromSiteConfig authenticates the operator and takes the camera's
// stream, credentials and mask sets from the site config.
func (o *maskPreviewOptions) fromSiteConfig(ctx context.Context) (previewSource, error) {
	src := previewSource{close: func() {}}
	if o.config == "" {
		return src, usageError{msg: "mask preview: --camera needs --config"}
	}
	if o.operator == "" || o.pwFile == "" {
		return src, usageError{msg: "mask preview: --config needs --operator and --password-file (the operator's)"}
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		return src, err
	}
	cam := cfg.Camera(o.camera)
	if cam == nil {
		return src, fmt.Errorf("mask preview: %s has no camera %q", o.config, o.camera)
	}
	if src.op, src.audit, err = authenticate(cfg, o.operator, o.pwFile, audit.Entry{Actor: o.operator, Action: "mask_preview", Camera: cam.ID}, access.ActMaskPreview, cam.ID); err != nil {
		return src, err
	}
	set, err := o.approvedSet(cam)
	if err == nil {
		err = scheduleActive(cam)
	}
	if err != nil {
		return src, fmt.Errorf("mask preview: %w; nothing written", err)
	}
	if len(set.Masks) == 0 {
		src.note = fmt.Sprintf("note: the config approves this view of camera %q without masks: the preview is the whole picture, as velo run streams it", cam.ID)
	}
	cl, _, err := camera.Connect(ctx, cam)
	if err != nil {
		return src, err
	}
	src.close = cl.CloseIdleConnections
	uri, prof, err := camera.ResolveStream(ctx, cl, cam.ID, cam.Profile)
	if err != nil {
		return src, err
	}
	if err := src.checkPreset(ctx, cam, cl, prof.Token, o.preset); err != nil {
		return src, err
	}
	src.masks = maskspec.MaskFile{Camera: cam.ID, Sets: cam.StillMaskSets()}
	src.capture = camera.Capture(cam, uri)
	return src, nil
}

// approvedSet is the mask set of the view --preset names, which must be
// one of the camera's approved views.
func (o *maskPreviewOptions) approvedSet(cam *config.CameraConfig) (maskspec.MaskSet, error) {
	var tokens []string
	for _, set := range cam.MaskSets() {
		if set.Preset == o.preset {
			return set, nil
		}
		tokens = append(tokens, strconv.Quote(set.Preset))
	}
	return maskspec.MaskSet{}, fmt.Errorf("camera %q has no approved view %q (its views: %s)", cam.ID, o.preset, strings.Join(tokens, ", "))
}

// checkPreset makes sure a PTZ camera is at the approved position of the
// preset whose masks the preview applies, within the tolerance the PTZ
// lock uses (ER-3.2): the masks of one view over the picture of another
// would show what they are meant to hide.
func (src *previewSource) checkPreset(ctx context.Context, cam *config.CameraConfig, cl *onvif.Client, profile, preset string) error {
	for _, p := range cam.Presets {
		if p.Token != preset {
			continue
		}
		r := &viewRig{cl: cl, profile: profile}
		src.atView = func() error {
			if err := r.atPreset(ctx, p); err != nil {
				return fmt.Errorf("mask preview: camera %q: %w (ER-3.2): move it to the preset first (preset/apply); nothing written", cam.ID, err)
			}
			return nil
		}
		return src.atView()
	}
	return nil
}

// fromStream takes the stream and the masks from the flags.
func (o *maskPreviewOptions) fromStream() (previewSource, error) {
	src := previewSource{close: func() {}}
	var err error
	if src.masks, err = maskspec.LoadMaskFile(o.masks); err != nil {
		return src, err
	}
	for _, set := range src.masks.Sets {
		if set.Preset == o.preset && len(set.Masks) == 0 {
			return src, fmt.Errorf("mask preview: %s: the mask set of preset %q has no masks: the preview would be the camera's unmasked picture; nothing written", o.masks, o.preset)
		}
	}
	src.capture = masking.CaptureConfig{URL: o.stream, Username: o.user}
	if o.user != "" {
		if o.pwFile == "" {
			return src, usageError{msg: "mask preview: --user needs --password-file"}
		}
		if src.capture.Password, err = readPassword(o.pwFile); err != nil {
			return src, err
		}
	}
	return src, nil
}

// maskedFrame reads one frame, masks it with the preset's mask set and
// encodes it; a frame that cannot be masked is an error.
func (o *maskPreviewOptions) maskedFrame(ctx context.Context, src previewSource) ([]byte, *masking.Frame, error) {
	cc := src.capture
	cc.Backend = masking.Backend(o.backend)
	open, err := cc.Opener()
	if err != nil {
		return nil, nil, usageError{msg: err.Error()}
	}
	m, err := masking.NewMasker(src.masks.Camera, maskspec.FailDrop)
	if err != nil {
		return nil, nil, err
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets(src.masks.Sets); err != nil {
		return nil, nil, err
	}
	m.SetView(o.preset, true)
	stream, err := open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer stream.Close()
	f := &masking.Frame{}
	if err := stream.Read(f); err != nil {
		return nil, nil, err
	}
	f.Captured = time.Now()
	if src.atView != nil {
		if err := src.atView(); err != nil {
			return nil, nil, fmt.Errorf("the camera left the view while the frame was read: %w", err)
		}
	}
	if v, why := m.Process(f); v != masking.Masked {
		return nil, nil, fmt.Errorf("mask preview: camera %q preset %q: frame not masked (%s); nothing written", src.masks.Camera, o.preset, why)
	}
	jpg, err := masking.JPEG(f, 90)
	return jpg, f, err
}

type maskSelftestOptions struct {
	config        string
	width, height int
	json          bool
}

// maskSelftestCommand masks a generated frame and checks the result pixel
// by pixel, through OpenCV's conversion and codecs, and checks that frames
// that cannot be masked are refused. No camera is needed: it is what an
// installer (or CI under qemu-aarch64) runs to prove a gateway's build.
func maskSelftestCommand(s streams) *ffcli.Command {
	fs := newFlagSet("mask selftest")
	o := &maskSelftestOptions{}
	fs.StringVar(&o.config, "config", "", "also check every camera's mask sets from this site config `FILE`")
	fs.IntVar(&o.width, "width", 640, "frame width (even)")
	fs.IntVar(&o.height, "height", 360, "frame height (even)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON (docs/cli-json.md)")
	return &ffcli.Command{
		Name:       "selftest",
		ShortUsage: synopsis("velo mask selftest", fs, ""),
		ShortHelp:  "check masking on this gateway with a generated frame",
		LongHelp: `Mask a generated frame with built-in masks (and every mask set of
--config), check every pixel, round-trip it through OpenCV's conversion
and codecs, and check that unmaskable frames are refused. Then run every
H.264/H.265 decoder and encoder element of the codec table (hardware
first) and report which work here and which the frame path would use.
No camera needed; exits 1 if any check fails (run it on a new gateway).`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *maskSelftestOptions) run(s streams) error {
	var site []maskspec.MaskSet
	if o.config != "" {
		cfg, err := config.Load(o.config)
		if err != nil {
			return err
		}
		for i := range cfg.Cameras {
			site = append(site, cfg.Cameras[i].MaskSets()...)
		}
	}
	rep := masking.SelfTest(o.width, o.height, site)
	if o.json {
		enc := json.NewEncoder(s.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(s.stdout, "%s %s: %s\n", mark, c.Name, c.Detail)
		}
		for _, sk := range rep.Skipped {
			fmt.Fprintf(s.stdout, "skip %s\n", sk)
		}
		fmt.Fprintf(s.stdout, "selftest on %s, OpenCV %s, %dx%d: %d checks, %d failed, %.0f ms\n",
			rep.Arch, rep.OpenCV, rep.Width, rep.Height, len(rep.Checks), rep.Failed, rep.TookMS)
	}
	if !rep.OK {
		return fmt.Errorf("mask selftest: %d of %d checks failed", rep.Failed, len(rep.Checks))
	}
	return nil
}
