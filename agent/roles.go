package agent

import (
	"fmt"
	"slices"
	"strings"
)

// Action is something an operator does; Permissions says which roles may
// (REGULATION.md G-3.3.1 a/b/d, G-3.3.2, ER-4.3, ER-4.4, ER-4.6). Every
// entry point checks it: the relay (live view), the command handler
// (verbs) and the CLI (recordings).
type Action string

// Actions.
const (
	ActLiveView      Action = "live-view"      // masked live stream (RTSP)
	ActRecordingList Action = "recording-list" // list segments (metadata, no images)
	ActRecordingView Action = "recording-view" // decrypt a segment to watch it (reason required, ER-4.4)
	ActExport        Action = "export"         // copy out a segment (judicial reference, ER-4.6)
	ActHold          Action = "hold"           // put or release a legal hold (ER-4.5)
	ActPresetApply   Action = "preset-apply"   // move a camera to an approved preset
	ActConfigReload  Action = "config-reload"  // reload the site config
	ActStateRefresh  Action = "state-refresh"  // republish state (no images)
	ActDossier       Action = "dossier"        // site dossier: masked snapshots of the approved views (TN, ER-4.7)
	ActMaskPreview   Action = "mask-preview"   // one masked snapshot of a camera's view, to check its masks on site
)

// Permissions: which roles may do each action. The maintainer moves
// cameras to approved presets but sees no video (G-3.3.1 d); the installer
// proposes masks and presets (in the config, through an admin) and sees no
// recordings; only the exporter copies (ER-4.6); deletion is never manual:
// the retention sweeper does it (G-3.4).
var Permissions = map[Action][]string{
	ActLiveView:      {RoleLiveViewer, RoleAdmin},
	ActRecordingList: {RoleRecordingViewer, RoleExporter, RoleAdmin},
	ActRecordingView: {RoleRecordingViewer, RoleAdmin},
	ActExport:        {RoleExporter},
	ActHold:          {RoleExporter, RoleAdmin},
	ActPresetApply:   {RolePTZMaintainer, RoleAdmin},
	ActConfigReload:  {RoleAdmin},
	ActStateRefresh:  Roles,
	ActDossier:       {RoleInstaller, RoleAdmin},
	ActMaskPreview:   {RoleInstaller, RoleAdmin},
}

// Actions lists every action, sorted.
func Actions() []Action {
	var out []Action
	for a := range Permissions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// May reports whether op may do act (on camera, if not empty).
func (op *OperatorConfig) May(act Action, camera string) error {
	roles := Permissions[act]
	ok := false
	for _, r := range roles {
		ok = ok || op.HasRole(r)
	}
	if !ok {
		return fmt.Errorf("operator %q has no role allowed to %s (needs one of %s)", op.Name, act, strings.Join(roles, ", "))
	}
	if camera != "" && !slices.Contains(op.Cameras, camera) {
		return fmt.Errorf("operator %q is not assigned camera %q", op.Name, camera)
	}
	return nil
}

// Authenticate checks an operator's password for the CLI (through the
// slow key derivation, constant-time compare; see credentials.go).
func (c *Config) Authenticate(name, password string) (*OperatorConfig, error) {
	op := c.Operator(name)
	if op == nil || !op.checkPassword(password) {
		return nil, fmt.Errorf("operator %q: authentication failed", name)
	}
	return op, nil
}

// Access reasons for recordings (ER-4.4, G-3.3.1 b).
var AccessReasons = map[string]string{
	"maintenance":          "maintenance of the system",
	"police-request":       "assisting the police (request reference)",
	"court-request":        "assisting a court (order reference)",
	"authority-inspection": "inspection by the data protection authority",
	"data-subject-request": "a data subject's access request (request reference)",
}

// CheckReason validates a recording access reason and its reference.
func CheckReason(reason, ref string) error {
	if _, ok := AccessReasons[reason]; !ok {
		var rs []string
		for r := range AccessReasons {
			rs = append(rs, r)
		}
		slices.Sort(rs)
		return fmt.Errorf("reason %q is not one of %s (ER-4.4)", reason, strings.Join(rs, ", "))
	}
	if strings.TrimSpace(ref) == "" {
		return fmt.Errorf("reason %s needs a reference (request, order, inspection or ticket number)", reason)
	}
	return nil
}
