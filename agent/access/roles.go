// Package access says who may do what on a Velo gateway: the roles an
// operator can hold, the actions every entry point checks (the RTSP relay,
// signed MQTT commands, the CLI), the reasons a recording may be viewed for,
// and operator credentials (a slow hash from which every secret the gateway
// checks is derived). It holds policy only: no I/O, no network.
package access

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Roles an operator can hold (G-3.3.1 a, G-3.3.2, ER-4.3).
const (
	RoleLiveViewer      = "live-viewer"
	RoleRecordingViewer = "recording-viewer"
	RoleExporter        = "exporter"
	RolePTZMaintainer   = "ptz-maintainer"
	RoleInstaller       = "installer"
	RoleAdmin           = "admin"
)

// Roles lists every role (a new slice at each call).
func Roles() []string {
	return []string{RoleLiveViewer, RoleRecordingViewer, RoleExporter, RolePTZMaintainer, RoleInstaller, RoleAdmin}
}

// IsRole reports whether r is a role.
func IsRole(r string) bool { return slices.Contains(Roles(), r) }

// Action is something an operator does; the permission table says which
// roles may (G-3.3.1 a/b/d, G-3.3.2, ER-4.3, ER-4.4, ER-4.6).
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
	ActViewCapture   Action = "view-capture"   // record an approved view's reference picture (masked, low resolution)
	ActCommission    Action = "commission"     // installer console: propose views, see an unmasked still in an audited commissioning session
	ActViewApprove   Action = "view-approve"   // installer console: approve a proposed view (ER-4.7)
)

// permissions: which roles may do each action. The maintainer moves
// cameras to approved presets but sees no video (G-3.3.1 d); the installer
// proposes masks and presets (in the config, through an admin) and sees no
// recordings; only the exporter copies (ER-4.6); deletion is never manual:
// the retention sweeper does it (G-3.4). Unexported, so no importer can
// change the policy; May reads it.
var permissions = map[Action][]string{
	ActLiveView:      {RoleLiveViewer, RoleAdmin},
	ActRecordingList: {RoleRecordingViewer, RoleExporter, RoleAdmin},
	ActRecordingView: {RoleRecordingViewer, RoleAdmin},
	ActExport:        {RoleExporter},
	ActHold:          {RoleExporter, RoleAdmin},
	ActPresetApply:   {RolePTZMaintainer, RoleAdmin},
	ActConfigReload:  {RoleAdmin},
	ActStateRefresh:  Roles(),
	ActDossier:       {RoleInstaller, RoleAdmin},
	ActMaskPreview:   {RoleInstaller, RoleAdmin},
	ActViewCapture:   {RoleInstaller, RoleAdmin},
	ActCommission:    {RoleInstaller, RoleAdmin},
	ActViewApprove:   {RoleAdmin},
}

// Actions lists every action, sorted.
func Actions() []Action { return slices.Sorted(maps.Keys(permissions)) }

// Operator is who asks: a name, the roles held and the cameras assigned.
type Operator struct {
	Name    string
	Roles   []string
	Cameras []string
}

// May reports whether op may do act (on camera, if not empty): an error
// naming what is missing, or nil.
func May(op Operator, act Action, camera string) error {
	roles := permissions[act]
	if !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(op.Roles, r) }) {
		return fmt.Errorf("operator %q has no role allowed to %s (needs one of %s)", op.Name, act, strings.Join(roles, ", "))
	}
	if camera != "" && !slices.Contains(op.Cameras, camera) {
		return fmt.Errorf("operator %q is not assigned camera %q", op.Name, camera)
	}
	return nil
}

// accessReasons: why recordings may be viewed (ER-4.4, G-3.3.1 b).
var accessReasons = map[string]string{
	"maintenance":          "maintenance of the system",
	"police-request":       "assisting the police (request reference)",
	"court-request":        "assisting a court (order reference)",
	"authority-inspection": "inspection by the data protection authority",
	"data-subject-request": "a data subject's access request (request reference)",
}

// Reasons lists the recording access reasons, sorted.
func Reasons() []string { return slices.Sorted(maps.Keys(accessReasons)) }

// CheckReason validates a recording access reason and its reference.
func CheckReason(reason, ref string) error {
	if _, ok := accessReasons[reason]; !ok {
		return fmt.Errorf("reason %q is not one of %s (ER-4.4)", reason, strings.Join(Reasons(), ", "))
	}
	if strings.TrimSpace(ref) == "" {
		return fmt.Errorf("reason %s needs a reference (request, order, inspection or ticket number)", reason)
	}
	return nil
}
