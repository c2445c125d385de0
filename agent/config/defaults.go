package config

import (
	"time"

	"velo/agent/audit"
	"velo/masking/maskspec"
)

// Defaults of the site config, in one place: applyDefaults fills the
// fields the file left empty. (A mask's style, block and strength are
// filled by its validation, maskspec.MaskSet.Validate; the PTZ poll
// interval, segment length and discovery port by the packages that use
// them when zero.)
const (
	DefaultRTSPListen = "127.0.0.1:8654"
	DefaultStateDir   = "/var/lib/velo"
	// DefaultRecordingSocket is in the unit's RuntimeDirectory (/run/velo).
	DefaultRecordingSocket = "/run/velo/recordings.sock"
	DefaultEmbeddedListen  = "127.0.0.1:1883"
	DefaultOutboxMaxMB     = 64
	DefaultTolerance       = 0.02
	DefaultMaxShift        = 0.01
	DefaultRestoreFrames   = 5
	// DefaultRetention is a recording's retention unless the camera says
	// otherwise (G-3.4: at most 24 h without a reason).
	DefaultRetention = 24 * time.Hour
)

// The relay's connection limits (masking/relay Limits).
const (
	DefaultRTSPMaxConns      = 64
	DefaultRTSPMaxConnsPerIP = 8
	DefaultRTSPLoginTimeout  = 10 * time.Second
)

// Retention limits (G-3.4, G-3.2.1).
const (
	MinRetention = time.Hour
	// Past ReasonedRetention a reason is required; past PriorCheckRetention
	// the Garante's prior-check reference as well.
	ReasonedRetention   = 24 * time.Hour
	PriorCheckRetention = 7 * 24 * time.Hour
)

// applyDefaults fills the config-level defaults above.
func (c *Config) applyDefaults() {
	setDefault(&c.Outputs.RTSPListen, DefaultRTSPListen)
	setDefault(&c.Outputs.RTSPMaxConns, DefaultRTSPMaxConns)
	setDefault(&c.Outputs.RTSPMaxConnsPerIP, DefaultRTSPMaxConnsPerIP)
	setDefault(&c.Outputs.RTSPLoginTimeout, Duration(DefaultRTSPLoginTimeout))
	setDefault(&c.Outputs.Codec, "H264")
	setDefault(&c.StateDir, DefaultStateDir)
	setDefault(&c.Outputs.RecordingSocket, DefaultRecordingSocket)
	if c.Broker.URL == "" {
		setDefault(&c.Broker.EmbeddedListen, DefaultEmbeddedListen)
	}
	setDefault(&c.Broker.OutboxMaxMB, DefaultOutboxMaxMB)
	setDefault(&c.Audit.Keep, Duration(audit.MinKeep))
	setDefault(&c.Audit.HeadInterval, Duration(5*time.Minute))
	setDefault(&c.Audit.MaxFileMB, 8)
	setDefault(&c.Verify.MaxShift, DefaultMaxShift)
	setDefault(&c.Verify.RestoreFrames, DefaultRestoreFrames)
	c.applyTelemetryDefaults()
	if c.Discovery.Enabled {
		setDefault(&c.Discovery.Interval, Duration(10*time.Minute))
		setDefault(&c.Discovery.Window, Duration(3*time.Second))
	}
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		setDefault(&cam.FailMode, string(maskspec.FailBlank))
		setDefault(&cam.Record.Retention, Duration(DefaultRetention))
		for j := range cam.Presets {
			setDefault(&cam.Presets[j].Tolerance, DefaultTolerance)
		}
	}
}

// setDefault sets *field to v when it holds its zero value.
func setDefault[T comparable](field *T, v T) {
	var zero T
	if *field == zero {
		*field = v
	}
}
