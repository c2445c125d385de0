package dossier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"velo/agent/config"

	"github.com/go-pdf/fpdf"
)

// SignSizes are the paper sizes a sign is made for.
func SignSizes() []string { return []string{"A4", "A3"} }

// Sign writes the simplified information notice (the first layer, G-3.1,
// ER-4.8, EDPB 3/2019 §7) for one camera, in Italian and English: who the
// controller is, the purpose, whether images are recorded and for how
// long, the police link (second model) if any, where to exercise rights
// and where the full notice is. size is A4 or A3.
func Sign(w io.Writer, cfg *config.Config, cam *config.CameraConfig, size, generator string, now time.Time) error {
	if size != "A4" && size != "A3" {
		return fmt.Errorf("sign: size %q is not A4 or A3", size)
	}
	if err := signable(&cfg.Site); err != nil {
		return err
	}
	d := &Dossier{Generated: now.UTC(), Generator: generator, Site: Site{Controller: cfg.Site.Controller}}
	p, err := newDoc(size, d, fmt.Sprintf("Video-surveillance sign - %s - %s", cfg.Site.Name, cam.ID))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	p.SetAutoPageBreak(false, 0)
	p.AddPage()
	pw, ph := p.GetPageSize()
	k := pw / 210 // 1 on A4, 1.414 on A3
	m := 12 * k
	// Frame and yellow band: high contrast, readable by day and, printed
	// on retro-reflective stock or lit, by night.
	p.SetLineWidth(2.5 * k)
	p.Rect(m/2, m/2, pw-m, ph-m, "D")
	p.SetFillColor(255, 204, 0)
	p.Rect(m/2, m/2, pw-m, 62*k, "F")
	p.SetXY(m, m+4*k)
	p.font("B", 34*k)
	p.CellFormat(pw-2*m, 15*k, "AREA VIDEOSORVEGLIATA", "", 2, "C", false, 0, "")
	p.font("B", 24*k)
	p.CellFormat(pw-2*m, 11*k, "VIDEO-SURVEILLED AREA", "", 2, "C", false, 0, "")
	camera(p, pw/2, m+44*k, k)
	y := m/2 + 70*k
	for _, l := range signLines(cfg, cam) {
		if l.police {
			p.SetFillColor(0, 51, 153)
			p.Rect(m, y-1*k, pw-2*m, 21*k, "F")
			p.SetTextColor(255, 255, 255)
		}
		p.SetXY(m, y)
		style := ""
		if l.bold {
			style = "B"
		}
		p.font(style, 17*k)
		p.MultiCell(pw-2*m, 8*k, l.it, "", "L", false)
		p.SetX(m)
		p.font("I", 14*k)
		p.MultiCell(pw-2*m, 6.5*k, l.en, "", "L", false)
		p.SetTextColor(0, 0, 0)
		y = p.GetY() + 4*k
	}
	p.SetXY(m, ph-m/2-12*k)
	p.font("", 8*k)
	p.SetTextColor(80, 80, 80)
	p.MultiCell(pw-2*m, 4*k, fmt.Sprintf("Art. 13 Reg. (UE) 2016/679 - Provvedimento del Garante 8 aprile 2010, punto 3.1. Camera %s, %s. %s, %s.",
		cam.ID, cfg.Site.Name, generator, now.UTC().Format("2006-01-02")), "", "C", false)
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return fmt.Errorf("sign: pdf: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// camera draws the camera pictogram centred at (cx, cy).
func camera(p *doc, cx, cy, k float64) {
	p.SetFillColor(0, 0, 0)
	p.SetDrawColor(0, 0, 0)
	p.RoundedRect(cx-22*k, cy-7*k, 36*k, 14*k, 2*k, "1234", "F")
	p.Polygon([]fpdf.PointType{{X: cx + 14*k, Y: cy - 4*k}, {X: cx + 24*k, Y: cy - 8*k}, {X: cx + 24*k, Y: cy + 8*k}, {X: cx + 14*k, Y: cy + 4*k}}, "F")
	p.Rect(cx-8*k, cy+5*k, 3*k, 12*k, "F")
	p.Rect(cx-16*k, cy+15*k, 19*k, 3*k, "F")
}

// italianDuration and englishDuration say a retention in words.
func italianDuration(d time.Duration) string { return inWords(d, "24 ore", "%d giorni", "%d ore") }

func englishDuration(d time.Duration) string { return inWords(d, "24 hours", "%d days", "%d hours") }

func inWords(d time.Duration, oneDay, days, hours string) string {
	switch n := int(d / (24 * time.Hour)); {
	case d%(24*time.Hour) != 0:
		return fmt.Sprintf(hours, int(d.Round(time.Hour)/time.Hour))
	case n == 1:
		return oneDay
	default:
		return fmt.Sprintf(days, n)
	}
}

// PNG renders a one-page PDF to PNG with poppler's pdftoppm at dpi.
func PNG(pdf []byte, dpi int) ([]byte, error) {
	bin, err := exec.LookPath("pdftoppm")
	if err != nil {
		return nil, errors.New("sign: PNG output needs pdftoppm (Debian package poppler-utils); write a .pdf instead")
	}
	dir, err := os.MkdirTemp("", "velo-sign-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "sign.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-png", "-r", fmt.Sprint(dpi), "-singlefile", in, filepath.Join(dir, "sign"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sign: pdftoppm: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.ReadFile(filepath.Join(dir, "sign.png"))
}

// signable names the first field of the first layer (EDPB 3/2019 §7) the
// site config leaves empty.
func signable(s *config.SiteConfig) error {
	switch {
	case strings.TrimSpace(s.Contact) == "":
		return errors.New("sign: site.contact is required: the sign tells people where to exercise their rights (EDPB 3/2019 §7)")
	case strings.TrimSpace(s.LegalBasis) == "":
		return errors.New("sign: site.legal_basis is required: the sign states the legal basis of the processing (EDPB 3/2019 §7)")
	case len(s.Recipients) == 0:
		return errors.New("sign: site.recipients is required: the sign says who the images may be given to (EDPB 3/2019 §7)")
	}
	return nil
}

// signLine is one statement of the sign, in Italian and English.
type signLine struct {
	it, en       string
	bold, police bool
}

// signLines is what the sign says, in order: controller, purpose, legal
// basis, recipients, recording, the workplace agreement (L300-4), the
// police link, rights, DPO, full notice.
func signLines(cfg *config.Config, cam *config.CameraConfig) []signLine {
	site := &cfg.Site
	recipients := strings.Join(site.Recipients, "; ")
	ls := []signLine{
		{it: "Titolare del trattamento: " + site.Controller, en: "Controller: " + site.Controller, bold: true},
		{it: "Finalità: " + cam.Purpose, en: "Purpose: " + cam.Purpose},
		{it: "Base giuridica: " + site.LegalBasis, en: "Legal basis: " + site.LegalBasis},
		{it: "Destinatari: " + recipients, en: "Recipients: " + recipients},
		{it: "Le immagini NON sono registrate (solo visione in diretta).", en: "Images are NOT recorded (live viewing only).", bold: true},
	}
	if cam.Record.Enabled {
		r := time.Duration(cam.Record.Retention)
		ls[len(ls)-1] = signLine{it: "Le immagini sono registrate e conservate per " + italianDuration(r) + ", poi cancellate automaticamente.",
			en: "Images are recorded and kept for " + englishDuration(r) + ", then deleted automatically.", bold: true}
	}
	if w := cam.Workers; w != nil && w.Filmed {
		it, en := "accordo sindacale", "union agreement"
		if w.Authorisation == config.LabourInspectorate {
			it, en = "autorizzazione dell'Ispettorato del lavoro", "labour inspectorate authorisation"
		}
		ls = append(ls, signLine{it: "Impianto installato ai sensi dell'art. 4 L. 300/1970: " + it + " " + w.Reference + ".",
			en: "Installed under Art. 4 of Law 300/1970: " + en + " " + w.Reference + "."})
	}
	if cam.PoliceLink {
		ls = append(ls, signLine{it: "Il sistema è collegato con le Forze di Polizia.", en: "The system is linked to the police.", bold: true, police: true})
	}
	ls = append(ls, signLine{it: "Per esercitare i diritti (artt. 15-22 Reg. UE 2016/679): " + site.Contact,
		en: "To exercise your rights (GDPR Art. 15-22): " + site.Contact})
	if site.DPO != "" {
		ls = append(ls, signLine{it: "Responsabile della protezione dei dati: " + site.DPO, en: "Data protection officer: " + site.DPO})
	}
	if site.Notice != "" {
		return append(ls, signLine{it: "Informativa completa: " + site.Notice, en: "Full information notice: " + site.Notice})
	}
	return append(ls, signLine{it: "Informativa completa disponibile presso il titolare.", en: "Full information notice available from the controller."})
}
