package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"velo/agent/access"
)

// Access levels kept apart (G-3.3.1 a, d): an operator who can move a
// camera should not also be the one who watches what it shows, so that
// nobody can point a camera and look through it alone. moves and watches
// are read from the permission table, so they follow it.
var (
	moveActions  = []access.Action{access.ActPresetApply}
	watchActions = []access.Action{access.ActLiveView, access.ActRecordingView, access.ActExport}
)

// combinedRoles returns the actions op's roles give that both move cameras
// and show video (empty when the roles keep them apart).
func combinedRoles(op *OperatorConfig) (moves, watches []string) {
	who := access.Operator{Name: op.Name, Roles: op.Roles}
	for _, act := range moveActions {
		if access.May(who, act, "") == nil {
			moves = append(moves, string(act))
		}
	}
	for _, act := range watchActions {
		if access.May(who, act, "") == nil {
			watches = append(watches, string(act))
		}
	}
	if len(moves) == 0 || len(watches) == 0 {
		return nil, nil
	}
	return moves, watches
}

// validateOperatorSeparation refuses an operator whose roles both move
// cameras and show video unless the config says why one person needs both
// (operators[].combined_roles_reason, printed in the dossier), and two
// operators, or an operator and a camera or the broker, sharing one
// password file: each person has their own credentials (G-3.3.2).
func (c *Config) validateOperatorSeparation() error {
	for i := range c.Operators {
		op := &c.Operators[i]
		if moves, watches := combinedRoles(op); len(moves) > 0 && strings.TrimSpace(op.CombinedRolesReason) == "" {
			return c.fieldError(fmt.Sprintf("operators[%d].roles", i), "operator %q: roles [%s] both move cameras (%s) and show video (%s): maintenance sees no images (G-3.3.1 d) and access levels are kept apart (G-3.3.1 a); give these roles to different operators, or state why one person needs both in operators[%d].combined_roles_reason (the dossier lists it)",
				op.Name, strings.Join(op.Roles, ", "), strings.Join(moves, ", "), strings.Join(watches, ", "), i)
		}
	}
	files := c.secretFileOwners()
	for i, op := range c.Operators {
		field := fmt.Sprintf("operators[%d].password_file", i)
		if other := sharedWith(files[c.secretPath(op.PasswordFile)], field); other != "" {
			return c.fieldError(field, "operator %q: %s is also %s: each operator needs their own password file and password (G-3.3.2)", op.Name, op.PasswordFile, other)
		}
	}
	return nil
}

// sharedWith names who else uses an operator's password file: an earlier
// field, or a camera's or the broker's; a later operator is reported at
// that operator's own line.
func sharedWith(owners []string, field string) string {
	for _, other := range owners {
		switch {
		case other == field:
		case !strings.HasPrefix(other, "operators["):
			return other
		case slices.Index(owners, other) < slices.Index(owners, field):
			return other
		}
	}
	return ""
}

// secretFileOwners maps each password file the config names (resolved
// against its folder) to the fields naming it, in config order.
func (c *Config) secretFileOwners() map[string][]string {
	out := map[string][]string{}
	add := func(field, p string) {
		if p != "" {
			out[c.secretPath(p)] = append(out[c.secretPath(p)], field)
		}
	}
	for i, op := range c.Operators {
		add(fmt.Sprintf("operators[%d].password_file", i), op.PasswordFile)
	}
	for i, cam := range c.Cameras {
		add(fmt.Sprintf("cameras[%d].password_file", i), cam.PasswordFile)
	}
	add("broker.password_file", c.Broker.PasswordFile)
	return out
}

// secretPath is p resolved against the config's folder (Validate runs
// before the folder is recorded for the secrets), cleaned.
func (c *Config) secretPath(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(c.file), p)
	}
	return filepath.Clean(p)
}

// checkOwnPasswordFiles refuses an operator password file that is the same
// file as another password file under another name (a link): the names
// differ, the credentials do not (G-3.3.2). Load runs it once the files
// were read.
func (c *Config) checkOwnPasswordFiles() error {
	type named struct {
		field string
		info  os.FileInfo
	}
	var seen []named
	owners := c.secretFileOwners()
	paths := slices.Sorted(maps.Keys(owners))
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue // the reader named it already
		}
		field := owners[p][0]
		for _, s := range seen {
			if os.SameFile(s.info, st) && (strings.HasPrefix(field, "operators[") || strings.HasPrefix(s.field, "operators[")) {
				return c.fieldError(field, "%s is the same file as %s (a link): each operator needs their own password file and password (G-3.3.2)", p, s.field)
			}
		}
		seen = append(seen, named{field, st})
	}
	return nil
}
