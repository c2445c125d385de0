package config

import (
	"regexp"
	"strings"
)

// WorkersConfig says whether a camera may film workers. Article 4 of the
// Workers' Statute (L300-4) allows it only for organisational, production,
// safety or asset-protection needs, and only after an agreement with the
// workers' union representatives or, failing that, an authorisation of the
// labour inspectorate: its reference is required here, and the dossier and
// the sign show it.
type WorkersConfig struct {
	Filmed bool `yaml:"filmed"`
	// Authorisation is union-agreement or labour-inspectorate.
	Authorisation string `yaml:"authorisation"`
	// Reference identifies the agreement or the authorisation (protocol
	// number, date).
	Reference string `yaml:"reference"`
}

// Workplace authorisations (L300-4).
const (
	UnionAgreement     = "union-agreement"
	LabourInspectorate = "labour-inspectorate"
)

// forbiddenRoom matches locations no camera may film (G-4.1-rooms, ER-3.1):
// toilets, showers, changing and locker rooms, rest and recreation rooms,
// in Italian and English.
var forbiddenRoom = regexp.MustCompile(`(?i)\b(toilets?|wc|restrooms?|rest[ -]rooms?|bathrooms?|lavator(y|ies)|showers?|changing[ -]rooms?|locker[ -]rooms?|dressing[ -]rooms?|break[ -]rooms?|bagn[io]|servizi igienici|docc(ia|e)|spogliatoi[o]?|armadietti|sala (relax|ristoro|riposo)|area (relax|ristoro|riposo)|locale (di )?riposo)\b`)

// validateWorkplace refuses a camera in a room no camera may film and a
// camera filming workers without its agreement or authorisation.
func (c *Config) validateWorkplace(cam *CameraConfig, f func(string) string) error {
	for _, field := range []struct{ name, text string }{{"location", cam.Location}, {"purpose", cam.Purpose}, {"id", cam.ID}} {
		if m := forbiddenRoom.FindString(field.text); m != "" {
			return c.fieldError(f(field.name), "camera %q: %q names a toilet, shower, changing, locker or rest room: no camera may film there (G-4.1-rooms, ER-3.1)", cam.ID, m)
		}
	}
	w := cam.Workers
	if w == nil || !w.Filmed {
		if w != nil && (w.Authorisation != "" || w.Reference != "") {
			return c.fieldError(f("workers"), "camera %q: an authorisation for a camera that does not film workers: set filmed: true or remove it", cam.ID)
		}
		return nil
	}
	if w.Authorisation != UnionAgreement && w.Authorisation != LabourInspectorate {
		return c.fieldError(f("workers.authorisation"), "camera %q films workers: %q is not %s or %s (L300-4)", cam.ID, w.Authorisation, UnionAgreement, LabourInspectorate)
	}
	if strings.TrimSpace(w.Reference) == "" {
		return c.fieldError(f("workers.reference"), "camera %q films workers: the %s's reference is required (L300-4)", cam.ID, w.Authorisation)
	}
	return nil
}
