package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"velo/agent"
	"velo/agent/audit"
	"velo/masking"
	"velo/masking/maskspec"
)

func cmdMask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "selftest" {
		return cmdMaskSelftest(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "preview" {
		return usageError{"mask: subcommands are `preview` and `selftest`"}
	}
	fs := newFlags("mask preview", stderr, "velo mask preview: grab one frame, apply the masks and write the masked JPEG, so an installer can check a mask on site. With --config, the operator (installer or admin) is authenticated and the preview audited.")
	cfgPath := fs.String("config", "", "site config; with --camera, the stream, credentials and masks come from it")
	camID := fs.String("camera", "", "camera id in the site config")
	stream := fs.String("stream", "", "camera RTSP URL without credentials (without --camera; `velo probe` prints it)")
	user := fs.String("user", "", "camera user")
	pwFile := fs.String("password-file", "", "with --stream: file whose first line is the camera password; with --config: the operator's password")
	opName := fs.String("operator", "", "with --config: the operator (installer or admin; the preview is audited)")
	maskPath := fs.String("masks", "", "mask file (YAML, see docs/masking.md) (without --camera)")
	preset := fs.String("preset", "", "approved preset whose mask set to apply (\"\" for a fixed camera)")
	backend := fs.String("backend", "auto", "capture backend: auto (GStreamer, then FFmpeg), gstreamer or ffmpeg")
	out := fs.String("out", "", "JPEG file to write (required)")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after this long")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"mask preview: --out is required"}
	}
	var mf maskspec.MaskFile
	var cc masking.CaptureConfig
	var err error
	var al *audit.Log
	var op *agent.OperatorConfig
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch {
	case *camID != "":
		if *cfgPath == "" {
			return usageError{"mask preview: --camera needs --config"}
		}
		if *opName == "" || *pwFile == "" {
			return usageError{"mask preview: --config needs --operator and --password-file (the operator's)"}
		}
		cfg, err := agent.Load(*cfgPath)
		if err != nil {
			return err
		}
		cam := cfg.Camera(*camID)
		if cam == nil {
			return fmt.Errorf("mask preview: %s has no camera %q", *cfgPath, *camID)
		}
		if op, al, err = authenticate(cfg, *opName, *pwFile, audit.Entry{Actor: *opName, Action: "mask_preview", Camera: cam.ID}, agent.ActMaskPreview, cam.ID); err != nil {
			return err
		}
		cl, _, err := cam.Connect(ctx)
		if err != nil {
			return err
		}
		defer cl.CloseIdleConnections()
		uri, _, err := agent.ResolveStream(ctx, cl, cam.ID, cam.Profile)
		if err != nil {
			return err
		}
		mf = maskspec.MaskFile{Camera: cam.ID, Sets: cam.MaskSets()}
		cc = cam.Capture(uri)
	case *stream != "" && *maskPath != "":
		if mf, err = maskspec.LoadMaskFile(*maskPath); err != nil {
			return err
		}
		cc = masking.CaptureConfig{URL: *stream, Username: *user}
		if *user != "" {
			if *pwFile == "" {
				return usageError{"mask preview: --user needs --password-file"}
			}
			if cc.Password, err = readPassword(*pwFile); err != nil {
				return err
			}
		}
	default:
		return usageError{"mask preview: give --config and --camera, or --stream and --masks"}
	}
	cc.Backend = masking.Backend(*backend)
	open, err := cc.Opener()
	if err != nil {
		return usageError{err.Error()}
	}
	m, err := masking.NewMasker(mf.Camera, maskspec.FailDrop)
	if err != nil {
		return err
	}
	m.SetSettle(0)
	if _, err := m.SetMaskSets(mf.Sets); err != nil {
		return err
	}
	m.SetView(*preset, true)
	src, err := open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	f := &masking.Frame{}
	if err := src.Read(f); err != nil {
		return err
	}
	f.Captured = time.Now()
	if v, why := m.Process(f); v != masking.Masked {
		return fmt.Errorf("mask preview: camera %q preset %q: frame not masked (%s); nothing written", mf.Camera, *preset, why)
	}
	jpg, err := masking.JPEG(f, 90)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, jpg, 0o640); err != nil {
		return fmt.Errorf("mask preview: %w", err)
	}
	if al != nil {
		sum := sha256.Sum256(jpg)
		if _, err := al.Append(audit.Entry{Actor: op.Name, Action: "mask_preview", Camera: mf.Camera, Outcome: "ok",
			Fields: map[string]string{"preset": *preset, "sha256": hex.EncodeToString(sum[:]), "out": *out}}); err != nil {
			return fmt.Errorf("mask preview: written, but the audit entry failed: %w", err)
		}
	}
	fmt.Fprintf(stdout, "wrote %s: %dx%d, camera %q, preset %q, generation %d\n", *out, f.W, f.H, mf.Camera, *preset, f.Generation)
	return nil
}

// cmdMaskSelftest masks a generated frame and checks the result pixel by
// pixel, through OpenCV's conversion and codecs, and checks that frames
// that cannot be masked are refused. No camera is needed: it is what an
// installer (or CI under qemu-aarch64) runs to prove a gateway's build.
func cmdMaskSelftest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mask selftest", stderr, "velo mask selftest: mask a generated frame with built-in masks (and every mask set of --config), check every pixel, round-trip it through OpenCV, and check that unmaskable frames are refused. Exits 1 if any check fails.")
	cfgPath := fs.String("config", "", "also check every camera's mask sets from this site config")
	w := fs.Int("width", 640, "frame width (even)")
	h := fs.Int("height", 360, "frame height (even)")
	asJSON := fs.Bool("json", false, "print the report as JSON (docs/cli-json.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var site []maskspec.MaskSet
	if *cfgPath != "" {
		cfg, err := agent.Load(*cfgPath)
		if err != nil {
			return err
		}
		for i := range cfg.Cameras {
			site = append(site, cfg.Cameras[i].MaskSets()...)
		}
	}
	rep := masking.SelfTest(*w, *h, site)
	if *asJSON {
		enc := json.NewEncoder(stdout)
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
			fmt.Fprintf(stdout, "%s %s: %s\n", mark, c.Name, c.Detail)
		}
		fmt.Fprintf(stdout, "selftest on %s, OpenCV %s, %dx%d: %d checks, %d failed, %.0f ms\n",
			rep.Arch, rep.OpenCV, rep.Width, rep.Height, len(rep.Checks), rep.Failed, rep.TookMS)
	}
	if !rep.OK {
		return fmt.Errorf("mask selftest: %d of %d checks failed", rep.Failed, len(rep.Checks))
	}
	return nil
}
