package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"velo/agent/access"
	"velo/agent/config"
	"velo/agent/ptzlock"
)

// Gateway is what commands act on (the agent's supervisor).
type Gateway interface {
	// ApplyPreset moves a connected camera to an approved preset and
	// returns once the view is confirmed.
	ApplyPreset(ctx context.Context, camera, preset string) (any, error)
	// Reload re-reads and applies the site config.
	Reload() (any, error)
	// RefreshState republishes every camera state.
	RefreshState()
}

// Outcome statuses of a command (Reply.Status).
const (
	StatusOK        = "ok"
	StatusFailed    = "failed"    // executed, did not succeed
	StatusRefused   = "refused"   // not executed
	StatusDuplicate = "duplicate" // already executed: not executed again
)

// outcome is what executing a verb gave.
type outcome struct {
	status, reason string
	result         any
}

// verb is one command: the action the roles are checked for, the camera
// its args act on ("" for site-wide verbs), and what it does.
type verb struct {
	action access.Action
	camera func(args json.RawMessage) string
	exec   func(ctx context.Context, gw Gateway, cfg *config.Config, args json.RawMessage) outcome
}

// verbs is the one table of commands. Unexported: no importer can add or
// change a verb.
var verbs = map[string]verb{
	"preset/apply":  {action: access.ActPresetApply, camera: presetCamera, exec: execPresetApply},
	"config/reload": {action: access.ActConfigReload, camera: noCamera, exec: execReload},
	"state/refresh": {action: access.ActStateRefresh, camera: noCamera, exec: execRefresh},
}

// Verbs lists the command verbs, sorted.
func Verbs() []string { return slices.Sorted(maps.Keys(verbs)) }

// Action is the action a verb is checked for (false for an unknown verb).
func Action(name string) (access.Action, bool) {
	v, ok := verbs[name]
	return v.action, ok
}

func noCamera(json.RawMessage) string { return "" }

// presetArgs are preset/apply's args.
type presetArgs struct {
	Camera string `json:"camera"`
	Preset string `json:"preset"`
}

// presetCamera reads the camera leniently, for the role check; the args
// are decoded strictly when executed.
func presetCamera(args json.RawMessage) string {
	var pa presetArgs
	_ = json.Unmarshal(args, &pa)
	return pa.Camera
}

// applyTimeout bounds how long preset/apply waits for the view.
const applyTimeout = 45 * time.Second

func execPresetApply(ctx context.Context, gw Gateway, cfg *config.Config, args json.RawMessage) outcome {
	var pa presetArgs
	if err := decodeArgs(args, &pa); err != nil {
		return outcome{status: StatusRefused, reason: err.Error()}
	}
	cam := cfg.Camera(pa.Camera)
	if cam == nil {
		return outcome{status: StatusRefused, reason: fmt.Sprintf("no camera %q", pa.Camera)}
	}
	if !slices.ContainsFunc(cam.Presets, func(p config.PresetConfig) bool { return p.Token == pa.Preset }) {
		return outcome{status: StatusRefused, reason: fmt.Sprintf("camera %q preset %q: %v", cam.ID, pa.Preset, ptzlock.ErrNotApproved)}
	}
	actx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	res, err := gw.ApplyPreset(actx, cam.ID, pa.Preset)
	if err != nil {
		return outcome{status: StatusFailed, reason: err.Error()}
	}
	return outcome{status: StatusOK, result: res}
}

func execReload(_ context.Context, gw Gateway, _ *config.Config, _ json.RawMessage) outcome {
	res, err := gw.Reload()
	if err != nil {
		return outcome{status: StatusFailed, reason: err.Error()}
	}
	return outcome{status: StatusOK, result: res}
}

func execRefresh(_ context.Context, gw Gateway, _ *config.Config, _ json.RawMessage) outcome {
	gw.RefreshState()
	return outcome{status: StatusOK}
}
