package dossier

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-pdf/fpdf"
)

// doc wraps fpdf with the dossier's few text styles, in an embedded
// Unicode font (fonts.go).
type doc struct {
	*fpdf.Fpdf
}

func newDoc(size string, d *Dossier, title string) (*doc, error) {
	p := fpdf.New("P", "mm", size, "")
	p.SetCreationDate(d.Generated)
	p.SetModificationDate(d.Generated)
	p.SetProducer(d.Generator, true)
	p.SetCreator(d.Generator, true)
	p.SetTitle(title, true)
	p.SetAuthor(d.Site.Controller, true)
	p.SetMargins(15, 15, 15)
	p.SetAutoPageBreak(true, 18)
	p.AliasNbPages("{nb}")
	doc := &doc{Fpdf: p}
	if err := doc.addFonts(); err != nil {
		return nil, err
	}
	return doc, nil
}

func (p *doc) font(style string, size float64) { p.SetFont(fontFamily, style, size) }

func (p *doc) heading(s string, size float64) {
	p.font("B", size)
	p.MultiCell(0, size*0.5, s, "", "L", false)
	p.Ln(2)
}

// row prints a label and a wrapped value.
func (p *doc) row(label, value string) { p.sizedRow(label, value, 9.5) }

// hashRow prints a hex digest small enough to stay on one line, so it can
// be read and compared as one word.
func (p *doc) hashRow(label, value string) { p.sizedRow(label, value, 7.5) }

func (p *doc) sizedRow(label, value string, size float64) {
	if value == "" {
		value = "-"
	}
	p.font("B", 9.5)
	x := p.GetX()
	p.CellFormat(56, 5.2, label, "", 0, "L", false, 0, "")
	p.font("", size)
	p.MultiCell(0, 5.2, value, "", "L", false)
	p.SetX(x)
}

// warn prints a red line (a gap in the dossier).
func (p *doc) warn(s string) {
	p.SetTextColor(170, 0, 0)
	p.font("B", 9.5)
	p.MultiCell(0, 5.2, s, "", "L", false)
	p.SetTextColor(0, 0, 0)
}

// table prints a header row and rows, wrapping each cell.
func (p *doc) table(widths []float64, header []string, rows [][]string) {
	line := func(cells []string, style string, fill bool) {
		p.font(style, 8.5)
		h := 0.0
		for i, c := range cells {
			n := len(p.SplitText(c, widths[i]-2))
			h = max(h, float64(max(n, 1))*4.4)
		}
		_, ph := p.GetPageSize()
		_, _, _, bm := p.GetMargins()
		if p.GetY()+h > ph-bm {
			p.AddPage()
		}
		x, y := p.GetX(), p.GetY()
		for i, c := range cells {
			p.SetXY(x, y)
			if fill {
				p.SetFillColor(225, 225, 225)
			}
			p.Rect(x, y, widths[i], h, map[bool]string{true: "FD", false: "D"}[fill])
			p.SetXY(x+1, y)
			p.MultiCell(widths[i]-2, 4.4, c, "", "L", false)
			x += widths[i]
		}
		p.SetXY(p.GetX(), y+h)
		l, _, _, _ := p.GetMargins()
		p.SetX(l)
	}
	line(header, "B", true)
	for _, r := range rows {
		line(r, "", false)
	}
	p.Ln(3)
}

// PDF writes the dossier as a PDF (A4).
func PDF(w io.Writer, d *Dossier) error {
	p, err := newDoc("A4", d, "Video-surveillance dossier - "+d.Site.Name)
	if err != nil {
		return fmt.Errorf("dossier: %w", err)
	}
	p.SetFooterFunc(func() {
		p.SetY(-13)
		p.font("", 8)
		p.SetTextColor(90, 90, 90)
		p.CellFormat(0, 5, fmt.Sprintf("%s - site dossier of %s - page %d/{nb}", d.Site.Name, d.Generated.Format("2006-01-02 15:04 MST"), p.PageNo()), "", 0, "C", false, 0, "")
		p.SetTextColor(0, 0, 0)
	})
	p.AddPage()
	p.heading("Video-surveillance site dossier", 20)
	p.font("", 10)
	p.MultiCell(0, 5, "For the authorisation request: purposes and how each camera works (Autonomous Province of Trento, notice 1441 of 27 May 2025); Garante decision of 8 April 2010; ER-4.7 record of installations and approvals.", "", "L", false)
	p.Ln(3)
	p.heading("Site", 14)
	p.row("Site", fmt.Sprintf("%s (%s)", d.Site.Name, d.Site.ID))
	p.row("Controller (titolare)", d.Site.Controller)
	p.row("Purposes", strings.Join(d.Site.Purposes, "; "))
	p.row("Contact for data subjects", d.Site.Contact)
	p.row("Data protection officer", d.Site.DPO)
	p.row("Legal basis", d.Site.LegalBasis)
	p.row("Recipients", strings.Join(d.Site.Recipients, "; "))
	p.row("Full information notice", d.Site.Notice)
	p.row("Gateway", d.Gateway)
	p.row("Broker link", d.BrokerLink)
	p.row("Generated", fmt.Sprintf("%s by operator %s with %s", d.Generated.Format("2006-01-02 15:04:05 MST"), d.Operator, d.Generator))
	p.row("Cameras read", d.Scope)
	p.row("Site config", d.ConfigFile)
	p.hashRow("Site config SHA-256", d.ConfigSHA256)
	p.Ln(3)
	p.heading("Cameras", 14)
	var rows [][]string
	for _, c := range d.Cameras {
		rec := "no (live only)"
		if c.Recording {
			rec = "yes, kept " + c.Retention
		}
		police := "no"
		if c.PoliceLink {
			police = "yes"
		}
		rows = append(rows, []string{c.ID, c.Purpose, kindShort(c), fmt.Sprint(len(c.Views)), rec, police})
	}
	p.table([]float64{30, 52, 22, 14, 36, 26}, []string{"Camera", "Purpose", "Type", "Views", "Recording", "Police link"}, rows)
	if len(d.Gaps) > 0 {
		p.heading("Incomplete: items that could not be read", 12)
		for _, g := range d.Gaps {
			p.warn("- " + g)
		}
	}
	for i := range d.Cameras {
		if err := cameraPages(p, &d.Cameras[i]); err != nil {
			return err
		}
	}
	p.AddPage()
	p.heading("Operators and roles", 14)
	rows = nil
	for _, o := range d.Operators {
		rows = append(rows, []string{o.Name, o.RolesText(), strings.Join(o.Cameras, ", ")})
	}
	if len(rows) == 0 {
		rows = [][]string{{"(none)", "", ""}}
	}
	p.table([]float64{40, 60, 80}, []string{"Operator", "Roles", "Cameras"}, rows)
	p.font("", 9)
	p.MultiCell(0, 4.6, "Each operator has their own credentials. Live view: live-viewer, admin. Recordings: recording-viewer, admin, with a reason from ER-4.4 and its reference. Copies: exporter only, on a judicial request (ER-4.6). PTZ maintainers move cameras to approved presets and see no video (G-3.3.1 d). Deletion is automatic only (G-3.4).", "", "L", false)
	p.Ln(4)
	auditPage(p, d.Audit)
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return fmt.Errorf("dossier: pdf: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func kindShort(c Camera) string {
	if strings.HasPrefix(c.Kind, "PTZ") {
		return "PTZ (locked)"
	}
	return "fixed"
}

func cameraPages(p *doc, c *Camera) error {
	p.AddPage()
	p.heading("Camera "+c.ID, 16)
	p.row("Purpose", c.Purpose)
	p.row("Location", c.Location)
	p.row("Type", c.Kind)
	if c.Identity != nil {
		i := c.Identity
		p.row("Device", fmt.Sprintf("%s %s", i.Manufacturer, i.Model))
		p.row("Firmware", i.FirmwareVersion)
		p.row("Serial / hardware", fmt.Sprintf("%s / %s", i.SerialNumber, i.HardwareID))
	} else {
		p.row("Device", "")
		p.warn("Identity not read: " + c.IdentityError)
	}
	p.row("Recognised by", c.Match)
	if c.Recording {
		rec := "yes: masked video only, kept " + c.Retention + ", then deleted automatically (per-segment key destroyed, bytes overwritten)"
		if c.RetentionWhy != "" {
			rec += "; reason for more than 24 h: " + c.RetentionWhy
		}
		if c.PriorCheckRef != "" {
			rec += "; Garante prior check " + c.PriorCheckRef
		}
		p.row("Recording", rec)
	} else {
		p.row("Recording", "no: live view only")
	}
	p.row("Films workers (L300-4)", c.Workers)
	if c.Dynamic != "" {
		p.row("Dynamic masking", c.Dynamic)
	}
	if c.PoliceLink {
		p.row("Police link", "yes (sign: second model, G-3.1)")
	} else {
		p.row("Police link", "no")
	}
	p.row("Active hours", strings.Join(c.Schedule, "\n"))
	var rows [][]string
	for _, a := range c.Access {
		rows = append(rows, []string{a.Operator, strings.Join(a.Roles, ", "), strings.Join(a.Actions, ", ")})
	}
	if len(rows) == 0 {
		rows = [][]string{{"(nobody)", "", ""}}
	}
	p.Ln(2)
	p.heading("Who may do what", 11)
	p.table([]float64{32, 48, 100}, []string{"Operator", "Roles", "Allowed actions"}, rows)
	for j := range c.Views {
		if err := viewBlock(p, c, &c.Views[j]); err != nil {
			return err
		}
	}
	return nil
}

func viewBlock(p *doc, c *Camera, v *View) error {
	_, ph := p.GetPageSize()
	if p.GetY() > ph-120 {
		p.AddPage()
	}
	title := "Approved view (fixed camera)"
	if v.Preset != "" {
		title = "Approved view: preset " + v.Preset
	}
	p.heading(title, 12)
	if v.Position != nil {
		p.row("Position", fmt.Sprintf("pan %.3f, tilt %.3f, zoom %.3f (tolerance %.3f)", v.Position[0], v.Position[1], v.Position[2], v.Tolerance))
	}
	a := v.Approval
	p.row("Approval (ER-4.7)", fmt.Sprintf("by %s on %s, document %s", a.By, a.Date, a.Document))
	p.row("Reference (SHA-256)", v.References.String())
	for _, h := range v.History {
		p.row("History (ER-4.7)", h)
	}
	if s := v.Snapshot; s != nil {
		name := fmt.Sprintf("snap-%s-%s", c.ID, v.Preset)
		info := p.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: "JPG"}, bytes.NewReader(s.JPEG))
		if err := p.Error(); err != nil {
			return fmt.Errorf("dossier: camera %q %s: snapshot: %w", c.ID, viewName(v.Preset), err)
		}
		w := 120.0
		h := w * info.Height() / info.Width()
		if p.GetY()+h+12 > ph-18 {
			p.AddPage()
		}
		l, _, _, _ := p.GetMargins()
		y := p.GetY() + 1
		p.ImageOptions(name, l, y, w, h, false, fpdf.ImageOptions{ImageType: "JPG"}, 0, "")
		p.SetY(y + h + 1)
		p.font("I", 8)
		p.MultiCell(0, 4, fmt.Sprintf("Masked snapshot, %dx%d, taken %s, mask generation %d, JPEG SHA-256 %s. The masks were applied before encoding.", s.Width, s.Height, s.Taken.Format("2006-01-02 15:04:05 MST"), s.Generation, s.SHA256), "", "L", false)
		p.Ln(2)
	} else {
		p.warn("No masked snapshot: " + v.SnapshotError)
	}
	var rows [][]string
	for _, m := range v.Masks {
		rows = append(rows, []string{m.Name, m.Style, m.Area, m.Polygon})
	}
	if len(rows) == 0 {
		rows = [][]string{{"(no masks)", "", "", ""}}
	}
	p.table([]float64{40, 20, 18, 102}, []string{"Mask", "Style", "Frame", "Polygon (fractions of width, height)"}, rows)
	return nil
}

func auditPage(p *doc, a *AuditSummary) {
	p.heading("Audit log (G-4.6(1), ER-4.3)", 14)
	if a == nil {
		p.warn("no audit summary")
		return
	}
	if a.Verified {
		p.row("Hash chain", a.Result)
	} else {
		p.row("Hash chain", "")
		p.warn(a.Result)
	}
	p.row("Entries", fmt.Sprint(a.Entries))
	if a.Entries > 0 {
		p.row("From / to", a.First+" / "+a.Last)
	}
	p.row("Head", fmt.Sprintf("seq %d, hash %s", a.Head.Seq, a.Head.Hash))
	var keys []string
	for k := range a.ByAction {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows [][]string
	for _, k := range keys {
		rows = append(rows, []string{k, fmt.Sprint(a.ByAction[k])})
	}
	if len(rows) > 0 {
		p.Ln(2)
		p.table([]float64{90, 30}, []string{"Action", "Entries"}, rows)
	}
}
