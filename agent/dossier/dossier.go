// Package dossier builds the site dossier attached to an authorisation
// request (TN, G-3.1, ER-4.7) and the information signs
// placed before each camera (G-3.1, ER-4.8).
//
// The dossier says, per camera: its purpose, identity and firmware (read
// from the camera), location, approved views with their approvals, a
// masked snapshot of each approved view, the masks, retention, schedule,
// whether it records, and who may do what with it; and, for the site: the
// controller, purposes, contact and an audit log summary. It renders as
// PDF, self-contained HTML or JSON.
package dossier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/masking/maskspec"
	"velo/onvif"
)

// Dossier is the whole document (also its JSON form).
type Dossier struct {
	Generated    time.Time `json:"generated"`
	Generator    string    `json:"generator"`
	Operator     string    `json:"operator"`
	ConfigFile   string    `json:"config_file"`
	ConfigSHA256 string    `json:"config_sha256"`
	Site         Site      `json:"site"`
	Gateway      string    `json:"gateway"`
	// BrokerLink says how telemetry and commands travel (G-3.3.1 f).
	BrokerLink string `json:"broker_link"`
	// Scope says whose cameras the snapshots and identities were read
	// from: an admin's dossier has every camera, an installer's only the
	// cameras assigned to them (G-3.3.1 a).
	Scope     string        `json:"scope"`
	Cameras   []Camera      `json:"cameras"`
	Operators []Operator    `json:"operators"`
	Audit     *AuditSummary `json:"audit"`
	// Gaps lists what could not be read (camera unreachable, snapshot
	// refused); with --allow-gaps the dossier is written anyway and each
	// gap is printed where the missing item would be.
	Gaps []string `json:"gaps,omitempty"`
}

// Site is the controller and what the site is for.
type Site struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Controller string   `json:"controller"`
	Purposes   []string `json:"purposes"`
	Contact    string   `json:"contact,omitempty"`
	DPO        string   `json:"dpo,omitempty"`
	Notice     string   `json:"notice,omitempty"`
	LegalBasis string   `json:"legal_basis,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
}

// Camera is one camera's page.
type Camera struct {
	ID            string            `json:"id"`
	Purpose       string            `json:"purpose"`
	Location      string            `json:"location,omitempty"`
	Kind          string            `json:"kind"` // "PTZ (locked to approved presets)" or "fixed"
	Match         string            `json:"match"`
	Identity      *onvif.DeviceInfo `json:"identity,omitempty"`
	IdentityError string            `json:"identity_error,omitempty"`
	Views         []View            `json:"views"`
	Recording     bool              `json:"recording"`
	Retention     string            `json:"retention,omitempty"`
	RetentionWhy  string            `json:"retention_reason,omitempty"`
	PriorCheckRef string            `json:"prior_check_ref,omitempty"`
	Schedule      []string          `json:"schedule"`
	PoliceLink    bool              `json:"police_link"`
	// Workers says whether the camera may film workers and under which
	// agreement or authorisation (L300-4).
	Workers string   `json:"workers"`
	Access  []Access `json:"access"`
	// Dynamic describes dynamic masking of people, with its detector
	// settings (G-4.5, G-5.3, G-3.2.1); "" when off.
	Dynamic string `json:"dynamic_masking,omitempty"`
}

// View is an approved view: a preset or a fixed camera's only view.
type View struct {
	Preset    string                `json:"preset,omitempty"`
	Position  *[3]float64           `json:"position,omitempty"` // pan, tilt, zoom
	Tolerance float64               `json:"tolerance,omitempty"`
	Approval  config.ApprovalConfig `json:"approval"`
	Masks     []Mask                `json:"masks"`
	// References: the view's reference pictures (day, night) every frame
	// is verified against, by their SHA-256 ("" when none was recorded).
	References References `json:"references"`
	// History is the view's changes from the audit log, oldest first:
	// proposals and approvals in the installer console, changes applied
	// by reloads (ER-4.7).
	History       []string  `json:"history,omitempty"`
	Snapshot      *Snapshot `json:"snapshot,omitempty"`
	SnapshotError string    `json:"snapshot_error,omitempty"`
}

// Mask is one masked region, described in words for the reader.
type Mask struct {
	Name    string `json:"name"`
	Style   string `json:"style"`
	Polygon string `json:"polygon"` // "(x,y) (x,y) …" in frame fractions
	Area    string `json:"area"`    // share of the frame covered
}

// Snapshot is one masked frame of an approved view, JPEG-encoded after
// the masks were applied (masking.JPEG refuses unmasked frames).
type Snapshot struct {
	JPEG       []byte    `json:"jpeg"` // base64 in JSON
	Width      int       `json:"width"`
	Height     int       `json:"height"`
	SHA256     string    `json:"sha256"`
	Taken      time.Time `json:"taken"`
	Generation uint64    `json:"mask_generation"`
}

// Access is what one operator may do with a camera.
type Access struct {
	Operator string   `json:"operator"`
	Roles    []string `json:"roles"`
	Actions  []string `json:"actions"`
}

// Operator is a site operator (no secrets).
type Operator struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Cameras []string `json:"cameras"`
	// CombinedRolesReason is why this person holds roles that both move
	// cameras and show video (G-3.3.1 a, d); the config refuses such roles
	// without it.
	CombinedRolesReason string `json:"combined_roles_reason,omitempty"`
}

// RolesText is the operator's roles for the reader, with the reason when
// they combine moving cameras and watching.
func (o Operator) RolesText() string {
	s := strings.Join(o.Roles, ", ")
	if o.CombinedRolesReason != "" {
		s += "; moves cameras and sees video because: " + o.CombinedRolesReason + " (G-3.3.1 a, d)"
	}
	return s
}

// AuditSummary is the audit log's state when the dossier was made.
type AuditSummary struct {
	Verified bool           `json:"verified"`
	Result   string         `json:"result"`
	Entries  int            `json:"entries"`
	First    string         `json:"first,omitempty"`
	Last     string         `json:"last,omitempty"`
	Head     audit.Head     `json:"head"`
	ByAction map[string]int `json:"by_action"`
}

// Sources read what only the cameras know. Either may be nil (the item
// is then a gap).
type Sources struct {
	Identity func(ctx context.Context, cam *config.CameraConfig) (onvif.DeviceInfo, error)
	// Snapshots returns one masked snapshot per approved view, in the
	// order of views (a fixed camera has one view, preset ""), or an error
	// per view.
	Snapshots func(ctx context.Context, cam *config.CameraConfig) (map[string]*Snapshot, map[string]error)
}

// NewSnapshot wraps the JPEG of a masked frame (the caller encodes it with
// the frame path's masking.JPEG, which refuses unmasked frames: this
// package links no OpenCV).
func NewSnapshot(jpg []byte, width, height int, taken time.Time, generation uint64) *Snapshot {
	sum := sha256.Sum256(jpg)
	return &Snapshot{JPEG: jpg, Width: width, Height: height, SHA256: hex.EncodeToString(sum[:]), Taken: taken.UTC(), Generation: generation}
}

// Build assembles the dossier for cfg (loaded from cfgPath).
func Build(ctx context.Context, cfg *config.Config, cfgPath, operator, generator string, src Sources, now time.Time) (*Dossier, error) {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("dossier: %w", err)
	}
	sum := sha256.Sum256(raw)
	d := &Dossier{
		Generated: now.UTC(), Generator: generator, Operator: operator,
		ConfigFile: cfgPath, ConfigSHA256: hex.EncodeToString(sum[:]),
		Site: Site{ID: cfg.Site.ID, Name: cfg.Site.Name, Controller: cfg.Site.Controller, Purposes: cfg.Site.Purposes,
			Contact: cfg.Site.Contact, DPO: cfg.Site.DPO, Notice: cfg.Site.Notice,
			LegalBasis: cfg.Site.LegalBasis, Recipients: cfg.Site.Recipients},
		Gateway: cfg.Gateway, BrokerLink: brokerLink(cfg),
	}
	if strings.TrimSpace(cfg.Site.LegalBasis) == "" {
		d.Gaps = append(d.Gaps, "site.legal_basis: not stated (EDPB-7)")
	}
	if len(cfg.Site.Recipients) == 0 {
		d.Gaps = append(d.Gaps, "site.recipients: not stated (EDPB-7)")
	}
	for _, op := range cfg.Operators {
		d.Operators = append(d.Operators, Operator{Name: op.Name, Roles: op.Roles, Cameras: op.Cameras, CombinedRolesReason: op.CombinedRolesReason})
	}
	d.Scope = scope(cfg, operator)
	for i := range cfg.Cameras {
		cam := &cfg.Cameras[i]
		c := describe(cfg, cam)
		if !inScope(cfg, operator, cam.ID) {
			outOfScope(&c, operator)
			d.Cameras = append(d.Cameras, c)
			continue
		}
		if src.Identity != nil {
			info, err := src.Identity(ctx, cam)
			if err != nil {
				c.IdentityError = err.Error()
			} else {
				c.Identity = &info
			}
		} else {
			c.IdentityError = "not read (no camera access)"
		}
		if c.IdentityError != "" {
			d.Gaps = append(d.Gaps, fmt.Sprintf("camera %q: identity: %s", cam.ID, c.IdentityError))
		}
		var snaps map[string]*Snapshot
		var errs map[string]error
		if src.Snapshots != nil {
			snaps, errs = src.Snapshots(ctx, cam)
		}
		for j := range c.Views {
			v := &c.Views[j]
			v.Snapshot = snaps[v.Preset]
			if v.Snapshot == nil {
				why := "not taken (no camera access)"
				if err := errs[v.Preset]; err != nil {
					why = err.Error()
				}
				v.SnapshotError = why
				d.Gaps = append(d.Gaps, fmt.Sprintf("camera %q %s: snapshot: %s", cam.ID, viewName(v.Preset), why))
			}
		}
		d.Cameras = append(d.Cameras, c)
	}
	d.Audit = summarise(config.AuditDir(cfg))
	addHistory(d, config.AuditDir(cfg))
	return d, nil
}

// historyActions are the audit actions that make a view's history.
var historyActions = map[string]bool{"view_proposed": true, "view_approved": true, "view_changed": true}

// addHistory gives each view its history from the audit log (an
// unreadable log is already reported by summarise).
func addHistory(d *Dossier, dir string) {
	entries, err := audit.Show(dir, audit.Filter{})
	if err != nil {
		return
	}
	hist := map[[2]string][]string{}
	for _, e := range entries {
		if historyActions[e.Action] {
			k := [2]string{e.Camera, e.Fields["preset"]}
			hist[k] = append(hist[k], fmt.Sprintf("%s %s by %s: %s", e.Time, e.Action, e.Actor, e.Detail))
		}
	}
	for i := range d.Cameras {
		for j := range d.Cameras[i].Views {
			d.Cameras[i].Views[j].History = hist[[2]string{d.Cameras[i].ID, d.Cameras[i].Views[j].Preset}]
		}
	}
}

// inScope reports whether the dossier's operator may have camera id's
// pictures: an admin every camera, anyone else the cameras assigned to
// them (G-3.3.1 a: an installer sees what they install, no more).
func inScope(cfg *config.Config, operator, id string) bool {
	op := cfg.Operator(operator)
	return op != nil && (op.HasRole(access.RoleAdmin) || slices.Contains(op.Cameras, id))
}

// scope says in words whose cameras the dossier read.
func scope(cfg *config.Config, operator string) string {
	op := cfg.Operator(operator)
	switch {
	case op == nil:
		return "no camera (operator " + operator + " is not in the config)"
	case op.HasRole(access.RoleAdmin):
		return "every camera (operator " + operator + " is an admin)"
	}
	return fmt.Sprintf("the cameras assigned to operator %s: %s (an admin's dossier has every camera)", operator, strings.Join(op.Cameras, ", "))
}

// outOfScope marks a camera the operator is not assigned: what the config
// says is there, nothing is read from the camera. It is not a gap: the
// operator may not have it.
func outOfScope(c *Camera, operator string) {
	why := fmt.Sprintf("not read: camera %s is not assigned to operator %s", c.ID, operator)
	c.IdentityError = why
	for j := range c.Views {
		c.Views[j].SnapshotError = why
	}
}

func viewName(preset string) string {
	if preset == "" {
		return "fixed view"
	}
	return "preset " + preset
}

// describe is what the config says about a camera.
func describe(cfg *config.Config, cam *config.CameraConfig) Camera {
	c := Camera{ID: cam.ID, Purpose: cam.Purpose, Location: cam.Location, PoliceLink: cam.PoliceLink, Recording: cam.Record.Enabled,
		Workers: workersLine(cam.Workers), Dynamic: dynamicLine(cam)}
	switch m := cam.Match; {
	case m.Serial != "":
		c.Match = "serial " + m.Serial
	case m.MAC != "":
		c.Match = "MAC " + m.MAC
	default:
		c.Match = "endpoint " + m.Endpoint
	}
	if len(cam.Presets) > 0 {
		c.Kind = "PTZ, locked to approved presets (drift reverted, other moves refused)"
		for _, p := range cam.Presets {
			pos := [3]float64{p.Position.Pan, p.Position.Tilt, p.Position.Zoom}
			c.Views = append(c.Views, View{Preset: p.Token, Position: &pos, Tolerance: p.Tolerance, Approval: p.Approval, Masks: masks(p.Masks),
				References: references(cfg, cam.ID, p.Token)})
		}
	} else {
		c.Kind = "fixed"
		v := View{Masks: masks(cam.Masks), References: references(cfg, cam.ID, "")}
		if cam.Approval != nil {
			v.Approval = *cam.Approval
		}
		c.Views = append(c.Views, v)
	}
	if c.Recording {
		c.Retention = hours(time.Duration(cam.Record.Retention))
		c.RetentionWhy = cam.Record.RetentionReason
		c.PriorCheckRef = cam.Record.PriorCheckRef
	}
	c.Schedule = Schedule(cam.Schedule)
	for _, op := range cfg.Operators {
		if !slices.Contains(op.Cameras, cam.ID) {
			continue
		}
		a := Access{Operator: op.Name, Roles: op.Roles}
		for _, act := range access.Actions() {
			if op.May(act, cam.ID) == nil {
				a.Actions = append(a.Actions, string(act))
			}
		}
		c.Access = append(c.Access, a)
	}
	return c
}

// hours says a retention in hours, and days when whole.
func hours(d time.Duration) string {
	h := d.Hours()
	switch {
	case d%(24*time.Hour) == 0 && d > 24*time.Hour:
		return fmt.Sprintf("%g h (%d days)", h, int(h/24))
	default:
		return fmt.Sprintf("%g h", h)
	}
}

func masks(ms []maskspec.Mask) []Mask {
	var out []Mask
	for _, m := range ms {
		var pts []string
		for _, p := range m.Polygon {
			pts = append(pts, fmt.Sprintf("(%.2f,%.2f)", p.X, p.Y))
		}
		style := string(m.Style)
		if style == "" {
			style = "fill"
		}
		out = append(out, Mask{Name: m.Name, Style: style, Polygon: strings.Join(pts, " "), Area: fmt.Sprintf("%.1f%%", 100*area(m.Polygon))})
	}
	return out
}

// area is the polygon's area (shoelace), clipped to at most the frame.
func area(p []maskspec.Point) float64 {
	s := 0.0
	for i := range p {
		j := (i + 1) % len(p)
		s += p[i].X*p[j].Y - p[j].X*p[i].Y
	}
	if s < 0 {
		s = -s
	}
	return min(s/2, 1)
}

var dayNames = []struct{ key, name string }{{"mon", "Monday"}, {"tue", "Tuesday"}, {"wed", "Wednesday"}, {"thu", "Thursday"}, {"fri", "Friday"}, {"sat", "Saturday"}, {"sun", "Sunday"}}

// Schedule describes active hours in words, one line per day.
func Schedule(s *config.ScheduleConfig) []string {
	if s == nil {
		return []string{"always active (no schedule)"}
	}
	out := []string{"time zone " + s.Timezone}
	for _, d := range dayNames {
		var hours []string
		for k, v := range s.Weekly {
			if strings.EqualFold(k, d.key) {
				hours = v
			}
		}
		if len(hours) == 0 {
			out = append(out, d.name+": off")
		} else {
			out = append(out, d.name+": "+strings.Join(hours, ", "))
		}
	}
	hs := slices.Clone(s.Holidays)
	sort.Slice(hs, func(i, j int) bool { return hs[i].Date < hs[j].Date })
	for _, h := range hs {
		if len(h.Hours) == 0 {
			out = append(out, "holiday "+h.Date+": off")
		} else {
			out = append(out, "holiday "+h.Date+": "+strings.Join(h.Hours, ", "))
		}
	}
	return out
}

// summarise verifies the audit log and counts its entries by action.
func summarise(dir string) *AuditSummary {
	s := &AuditSummary{ByAction: map[string]int{}}
	rep, err := audit.Verify(dir, audit.VerifyOptions{})
	switch {
	case err != nil:
		s.Result = "not verified: " + err.Error()
		return s
	default:
		s.Verified = rep.OK
		s.Result = rep.String()
		s.Head = rep.Head
	}
	entries, err := audit.Show(dir, audit.Filter{})
	if err != nil {
		s.Result += "; not summarised: " + err.Error()
		return s
	}
	s.Entries = len(entries)
	for i, e := range entries {
		if i == 0 {
			s.First = e.Time
		}
		s.Last = e.Time
		s.ByAction[e.Action]++
	}
	return s
}

// References are a view's reference pictures by SHA-256.
type References struct {
	Day   string `json:"day_sha256,omitempty"`
	Night string `json:"night_sha256,omitempty"`
}

// references hashes the reference files of a view (they are written by
// velo view capture; the hash is the one in the audit log).
func references(cfg *config.Config, camera, preset string) References {
	sum := func(night bool) string {
		b, err := os.ReadFile(cfg.ReferencePath(camera, preset, night))
		if err != nil {
			return ""
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	return References{Day: sum(false), Night: sum(true)}
}

// String says which references a view has, for the reader.
func (r References) String() string {
	switch {
	case r.Day == "" && r.Night == "":
		return "none recorded (view capture): without one the view has no video unless the config allows it"
	case r.Night == "":
		return "day " + r.Day
	case r.Day == "":
		return "night " + r.Night
	}
	return "day " + r.Day + ", night " + r.Night
}

// brokerLink says how the gateway reaches its MQTT broker, naming the
// override when plaintext crosses the network (G-3.3.1 f).
func brokerLink(cfg *config.Config) string {
	switch u := cfg.Broker.URL; {
	case u == "":
		return "embedded broker on this gateway (loopback only)"
	case cfg.PlaintextBrokerOffHost():
		return "PLAINTEXT to another host, allowed by broker.plaintext_lan for a closed wired network (G-3.3.1 f)"
	case strings.HasPrefix(u, "tcp://") || strings.HasPrefix(u, "mqtt://"):
		return "plaintext on this machine's loopback"
	default:
		return "TLS (" + strings.SplitN(u, "://", 2)[0] + ")"
	}
}

// workersLine says whether a camera may film workers (L300-4), in words.
func workersLine(w *config.WorkersConfig) string {
	switch {
	case w == nil:
		return "not stated"
	case !w.Filmed:
		return "no"
	case w.Authorisation == config.UnionAgreement:
		return "yes, under the union agreement " + w.Reference + " (Art. 4 L. 300/1970)"
	default:
		return "yes, under the labour inspectorate's authorisation " + w.Reference + " (Art. 4 L. 300/1970)"
	}
}
