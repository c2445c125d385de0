package dossier

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"sort"
	"strings"
)

// JSON writes the dossier as indented JSON (snapshots in base64).
func JSON(w io.Writer, d *Dossier) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

var htmlTmpl = template.Must(template.New("d").Funcs(template.FuncMap{
	"join": strings.Join,
	"img": func(b []byte) template.URL {
		return template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b))
	},
	"ts": func(t interface{ Format(string) string }) string { return t.Format("2006-01-02 15:04:05 MST") },
	"keys": func(m map[string]int) []string {
		k := make([]string, 0, len(m))
		for s := range m {
			k = append(k, s)
		}
		sort.Strings(k)
		return k
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Video-surveillance dossier - {{.Site.Name}}</title>
<style>
body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#e4e4e4}dl{display:grid;grid-template-columns:14em 1fr;gap:.2em 1em}dt{font-weight:bold}
.gap{color:#a00;font-weight:bold}section.camera{page-break-before:always}img{max-width:100%;border:1px solid #666}
.caption{font-size:.8em;font-style:italic}
</style></head><body>
<h1>Video-surveillance site dossier</h1>
<p>For the authorisation request: purposes and how each camera works (Autonomous Province of Trento, notice 1441 of 27 May 2025); Garante decision of 8 April 2010; ER-4.7 record of installations and approvals.</p>
<h2>Site</h2>
<dl>
<dt>Site</dt><dd>{{.Site.Name}} ({{.Site.ID}})</dd>
<dt>Controller (titolare)</dt><dd>{{.Site.Controller}}</dd>
<dt>Purposes</dt><dd>{{join .Site.Purposes "; "}}</dd>
<dt>Contact for data subjects</dt><dd>{{or .Site.Contact "-"}}</dd>
<dt>Data protection officer</dt><dd>{{or .Site.DPO "-"}}</dd>
<dt>Legal basis</dt><dd>{{or .Site.LegalBasis "-"}}</dd>
<dt>Recipients</dt><dd>{{if .Site.Recipients}}{{join .Site.Recipients "; "}}{{else}}-{{end}}</dd>
<dt>Full information notice</dt><dd>{{or .Site.Notice "-"}}</dd>
<dt>Gateway</dt><dd>{{.Gateway}}</dd>
<dt>Broker link</dt><dd>{{.BrokerLink}}</dd>
<dt>Generated</dt><dd>{{ts .Generated}} by operator {{.Operator}} with {{.Generator}}</dd><dt>Cameras read</dt><dd>{{.Scope}}</dd>
<dt>Site config</dt><dd>{{.ConfigFile}}, SHA-256 {{.ConfigSHA256}}</dd>
</dl>
<h2>Cameras</h2>
<table><tr><th>Camera</th><th>Purpose</th><th>Type</th><th>Views</th><th>Recording</th><th>Police link</th></tr>
{{range .Cameras}}<tr><td>{{.ID}}</td><td>{{.Purpose}}</td><td>{{.Kind}}</td><td>{{len .Views}}</td><td>{{if .Recording}}yes, kept {{.Retention}}{{else}}no (live only){{end}}</td><td>{{if .PoliceLink}}yes{{else}}no{{end}}</td></tr>
{{end}}</table>
{{if .Gaps}}<h3 class="gap">Incomplete: items that could not be read</h3><ul>{{range .Gaps}}<li class="gap">{{.}}</li>{{end}}</ul>{{end}}
{{range .Cameras}}<section class="camera">
<h2>Camera {{.ID}}</h2>
<dl>
<dt>Purpose</dt><dd>{{.Purpose}}</dd>
<dt>Location</dt><dd>{{or .Location "-"}}</dd>
<dt>Type</dt><dd>{{.Kind}}</dd>
{{with .Identity}}<dt>Device</dt><dd>{{.Manufacturer}} {{.Model}}</dd><dt>Firmware</dt><dd>{{.FirmwareVersion}}</dd><dt>Serial / hardware</dt><dd>{{.SerialNumber}} / {{.HardwareID}}</dd>{{else}}<dt>Device</dt><dd class="gap">Identity not read: {{.IdentityError}}</dd>{{end}}
<dt>Recognised by</dt><dd>{{.Match}}</dd>
<dt>Recording</dt><dd>{{if .Recording}}yes: masked video only, kept {{.Retention}}, then deleted automatically{{with .RetentionWhy}}; reason for more than 24 h: {{.}}{{end}}{{with .PriorCheckRef}}; Garante prior check {{.}}{{end}}{{else}}no: live view only{{end}}</dd>
<dt>Films workers (L300-4)</dt><dd>{{.Workers}}</dd>
{{with .Dynamic}}<dt>Dynamic masking</dt><dd>{{.}}</dd>{{end}}
<dt>Police link</dt><dd>{{if .PoliceLink}}yes (sign: second model, G-3.1){{else}}no{{end}}</dd>
<dt>Active hours</dt><dd>{{range .Schedule}}{{.}}<br>{{end}}</dd>
</dl>
<h3>Who may do what</h3>
<table><tr><th>Operator</th><th>Roles</th><th>Allowed actions</th></tr>
{{range .Access}}<tr><td>{{.Operator}}</td><td>{{join .Roles ", "}}</td><td>{{join .Actions ", "}}</td></tr>{{else}}<tr><td colspan="3">(nobody)</td></tr>{{end}}</table>
{{range .Views}}<h3>{{if .Preset}}Approved view: preset {{.Preset}}{{else}}Approved view (fixed camera){{end}}</h3>
<dl>{{with .Position}}<dt>Position</dt><dd>pan {{index . 0}}, tilt {{index . 1}}, zoom {{index . 2}}</dd>{{end}}
<dt>Approval (ER-4.7)</dt><dd>by {{.Approval.By}} on {{.Approval.Date}}, document {{.Approval.Document}}</dd>
<dt>Reference (SHA-256)</dt><dd>{{.References}}</dd>
{{with .History}}<dt>History (ER-4.7)</dt><dd>{{range .}}{{.}}<br>{{end}}</dd>{{end}}</dl>
{{with .Snapshot}}<figure><img src="{{img .JPEG}}" width="{{.Width}}" height="{{.Height}}" alt="masked snapshot">
<figcaption class="caption">Masked snapshot, {{.Width}}x{{.Height}}, taken {{ts .Taken}}, mask generation {{.Generation}}, JPEG SHA-256 {{.SHA256}}. The masks were applied before encoding.</figcaption></figure>
{{else}}<p class="gap">No masked snapshot: {{.SnapshotError}}</p>{{end}}
<table><tr><th>Mask</th><th>Style</th><th>Frame</th><th>Polygon (fractions of width, height)</th></tr>
{{range .Masks}}<tr><td>{{.Name}}</td><td>{{.Style}}</td><td>{{.Area}}</td><td>{{.Polygon}}</td></tr>{{else}}<tr><td colspan="4">(no masks)</td></tr>{{end}}</table>
{{end}}</section>
{{end}}
<section class="camera"><h2>Operators and roles</h2>
<table><tr><th>Operator</th><th>Roles</th><th>Cameras</th></tr>
{{range .Operators}}<tr><td>{{.Name}}</td><td>{{.RolesText}}</td><td>{{join .Cameras ", "}}</td></tr>{{else}}<tr><td colspan="3">(none)</td></tr>{{end}}</table>
{{with .Audit}}<h2>Audit log (G-4.6(1), ER-4.3)</h2>
<dl><dt>Hash chain</dt><dd{{if not .Verified}} class="gap"{{end}}>{{.Result}}</dd><dt>Entries</dt><dd>{{.Entries}}</dd>
<dt>From / to</dt><dd>{{.First}} / {{.Last}}</dd><dt>Head</dt><dd>seq {{.Head.Seq}}, hash {{.Head.Hash}}</dd></dl>
<table><tr><th>Action</th><th>Entries</th></tr>{{$m := .ByAction}}{{range keys .ByAction}}<tr><td>{{.}}</td><td>{{index $m .}}</td></tr>{{end}}</table>{{end}}
</section></body></html>
`))

// HTML writes the dossier as one self-contained HTML page (snapshots
// inline).
func HTML(w io.Writer, d *Dossier) error { return htmlTmpl.Execute(w, d) }
