package dossier

import (
	"fmt"
	"os"
	"path/filepath"
)

// FontDir holds DejaVu Sans as Debian's fonts-dejavu-core installs it (the
// package depends on it). PDF's 14 standard fonts are neither embedded nor
// able to print text outside Windows-1252, so a controller named "Ștefan
// Łódź S.r.l." would come out with dots in place of letters and each viewer
// would substitute its own metrics. The dossier and the signs embed a
// subset of this Unicode TrueType font instead.
var FontDir = "/usr/share/fonts/truetype/dejavu"

// fontFamily is the family name the documents use.
const fontFamily = "DejaVuSans"

// fontFiles maps fpdf styles to DejaVu Sans files.
var fontFiles = map[string]string{
	"":   "DejaVuSans.ttf",
	"B":  "DejaVuSans-Bold.ttf",
	"I":  "DejaVuSans-Oblique.ttf",
	"BI": "DejaVuSans-BoldOblique.ttf",
}

// addFonts embeds the four styles of the family in p, or names the file
// that is missing.
func (p *doc) addFonts() error {
	for style, name := range fontFiles {
		path := filepath.Join(FontDir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("font %s: %w (install Debian's fonts-dejavu-core)", path, err)
		}
		p.AddUTF8FontFromBytes(fontFamily, style, b)
	}
	return p.Error()
}
