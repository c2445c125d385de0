package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"velo/internal/safefile"
	"velo/masking/maskspec"
)

// The console's defaults (agent/console).
const (
	DefaultConsoleSessionTTL       = 30 * time.Minute
	DefaultConsoleCommissioningTTL = 15 * time.Minute
)

// ConsoleConfig is the installer console served by velo run over HTTPS
// (agent/console, docs/console.md). Off unless Listen is set.
type ConsoleConfig struct {
	// Listen is the console's host:port; loopback unless LAN is true.
	Listen string `yaml:"listen"`
	// LAN allows Listen off loopback (installers on the site's network).
	LAN bool `yaml:"lan"`
	// CertFile and KeyFile: the console's certificate; both or neither.
	// Neither: a self-signed one is made at first start in
	// <state_dir>/console and kept.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// SessionTTL ends a login session (default 30m, 1m..12h).
	SessionTTL Duration `yaml:"session_ttl"`
	// CommissioningTTL ends a commissioning session, the only place an
	// unmasked still is shown (default 15m, 1m..1h).
	CommissioningTTL Duration `yaml:"commissioning_ttl"`
}

// ManagedViews is the managed file the console writes approved views to
// (views_file): the site config includes it, site.yaml stays hand-edited.
type ManagedViews struct {
	Views []ManagedView `yaml:"views" json:"views"`
}

// ManagedView replaces one approved view's masks and approval: a fixed
// camera's view (Preset "") or one of a PTZ camera's presets. With a
// Position it adds a preset the site config lacks (a PTZ position saved
// in the console's commissioning and approved there).
type ManagedView struct {
	Camera    string           `yaml:"camera" json:"camera"`
	Preset    string           `yaml:"preset,omitempty" json:"preset,omitempty"`
	Position  *ManagedPosition `yaml:"position,omitempty" json:"position,omitempty"`
	Tolerance float64          `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
	Masks     []maskspec.Mask  `yaml:"masks" json:"masks"`
	Approval  ApprovalConfig   `yaml:"approval" json:"approval"`
}

// ManagedPosition is a preset's PTZ position in the generic spaces.
type ManagedPosition struct {
	Pan  float64 `yaml:"pan" json:"pan"`
	Tilt float64 `yaml:"tilt" json:"tilt"`
	Zoom float64 `yaml:"zoom" json:"zoom"`
}

// ViewsPath is the managed views file (absolute), or "" without one.
func (c *Config) ViewsPath() string {
	if c.ViewsFile == "" || filepath.IsAbs(c.ViewsFile) {
		return c.ViewsFile
	}
	return filepath.Join(filepath.Dir(c.file), c.ViewsFile)
}

func (c *Config) applyConsoleDefaults() {
	setDefault(&c.Console.SessionTTL, Duration(DefaultConsoleSessionTTL))
	setDefault(&c.Console.CommissioningTTL, Duration(DefaultConsoleCommissioningTTL))
}

func (c *Config) validateConsole() error {
	k := &c.Console
	c.applyConsoleDefaults()
	if k.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(k.Listen)
	if err != nil {
		return c.fieldError("console.listen", "%q is not host:port", k.Listen)
	}
	if !loopbackHost(host) && !k.LAN {
		return c.fieldError("console.listen", "%q is off loopback: set console.lan: true to serve installers on the network", k.Listen)
	}
	if (k.CertFile == "") != (k.KeyFile == "") {
		return c.fieldError("console.cert_file", "cert_file and key_file go together (neither: a self-signed certificate is made)")
	}
	if d := time.Duration(k.SessionTTL); d < time.Minute || d > 12*time.Hour {
		return c.fieldError("console.session_ttl", "%v is out of 1m..12h", d)
	}
	if d := time.Duration(k.CommissioningTTL); d < time.Minute || d > time.Hour {
		return c.fieldError("console.commissioning_ttl", "%v is out of 1m..1h", d)
	}
	return nil
}

// ParseManagedViews decodes a managed views file strictly.
func ParseManagedViews(name string, data []byte) (ManagedViews, error) {
	var mv ManagedViews
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&mv); err != nil && len(bytes.TrimSpace(data)) > 0 {
		return mv, fmt.Errorf("config: %s: %w", name, err)
	}
	return mv, nil
}

// includeViews reads the managed views file, if the config names one and
// it exists, and applies it over the cameras before validation. data, if
// not nil, replaces the file's content (a candidate being checked).
func (c *Config) includeViews(data []byte) error {
	path := c.ViewsPath()
	if path == "" {
		return nil
	}
	if data == nil {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return nil // nothing approved through the console yet
		}
		var err error
		if data, err = safefile.ReadFile(path, safefile.MaxConfigBytes); err != nil {
			return fmt.Errorf("config: views_file: %w", err)
		}
	}
	mv, err := ParseManagedViews(path, data)
	if err != nil {
		return err
	}
	for i, v := range mv.Views {
		if err := c.applyManagedView(v); err != nil {
			return fmt.Errorf("config: %s: views[%d]: %w", path, i, err)
		}
	}
	return nil
}

func (c *Config) applyManagedView(v ManagedView) error {
	cam := c.Camera(v.Camera)
	if cam == nil {
		return fmt.Errorf("camera %q is not in %s", v.Camera, c.file)
	}
	if v.Approval.By == "" || v.Approval.Date == "" || v.Approval.Document == "" {
		return fmt.Errorf("camera %q: approval needs by, date and document (ER-4.7)", v.Camera)
	}
	// Checked here too, so that an error names this file, not the site's.
	set := maskspec.MaskSet{Camera: v.Camera, Preset: v.Preset, Masks: append([]maskspec.Mask(nil), v.Masks...)}
	if err := set.Validate(); err != nil {
		return err
	}
	if v.Preset == "" {
		if len(cam.Presets) > 0 {
			return fmt.Errorf("camera %q has presets: name the preset", v.Camera)
		}
		ap := v.Approval
		cam.Approval, cam.Masks = &ap, v.Masks
		return nil
	}
	for i := range cam.Presets {
		if cam.Presets[i].Token == v.Preset {
			if v.Position != nil {
				return fmt.Errorf("camera %q preset %q: its position is in %s; the views file sets a position only for a preset it adds", v.Camera, v.Preset, c.file)
			}
			cam.Presets[i].Approval, cam.Presets[i].Masks = v.Approval, v.Masks
			return nil
		}
	}
	if v.Position == nil {
		return fmt.Errorf("camera %q has no preset %q (a preset the views file adds needs its position)", v.Camera, v.Preset)
	}
	if len(cam.Presets) == 0 {
		return fmt.Errorf("camera %q is fixed (no presets): the views file adds presets to PTZ cameras only", v.Camera)
	}
	p := PresetConfig{Token: v.Preset, Tolerance: v.Tolerance, Approval: v.Approval, Masks: v.Masks}
	p.Position.Pan, p.Position.Tilt, p.Position.Zoom = v.Position.Pan, v.Position.Tilt, v.Position.Zoom
	cam.Presets = append(cam.Presets, p)
	return nil
}
