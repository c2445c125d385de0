package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"velo/agent"
	"velo/masking"
)

func cmdMask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "preview" {
		return usageError{"mask: the only subcommand is `preview`"}
	}
	fs := newFlags("mask preview", stderr, "velo mask preview: grab one frame, apply the masks and write the masked JPEG, so an installer can check a mask on site.")
	cfgPath := fs.String("config", "", "site config; with --camera, the stream, credentials and masks come from it")
	camID := fs.String("camera", "", "camera id in the site config")
	stream := fs.String("stream", "", "camera RTSP URL without credentials (without --camera; `velo probe` prints it)")
	user := fs.String("user", "", "camera user")
	pwFile := fs.String("password-file", "", "file whose first line is the camera password")
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
	var mf masking.MaskFile
	var cc masking.CaptureConfig
	var err error
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	switch {
	case *camID != "":
		if *cfgPath == "" {
			return usageError{"mask preview: --camera needs --config"}
		}
		cfg, err := agent.Load(*cfgPath)
		if err != nil {
			return err
		}
		cam := cfg.Camera(*camID)
		if cam == nil {
			return fmt.Errorf("mask preview: %s has no camera %q", *cfgPath, *camID)
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
		mf = masking.MaskFile{Camera: cam.ID, Sets: cam.MaskSets()}
		cc = cam.Capture(uri)
	case *stream != "" && *maskPath != "":
		if mf, err = masking.LoadMaskFile(*maskPath); err != nil {
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
	m, err := masking.NewMasker(mf.Camera, masking.FailDrop)
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
	fmt.Fprintf(stdout, "wrote %s: %dx%d, camera %q, preset %q, generation %d\n", *out, f.W, f.H, mf.Camera, *preset, f.Generation)
	return nil
}
