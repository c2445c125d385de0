package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// manPage is velo(1) in roff (man(7) macros), generated from the same
// declarations as the help: `velo help --man`. The .deb ships it.
func manPage(root *ffcli.Command) string {
	var m strings.Builder
	fmt.Fprintf(&m, ".TH VELO 1 \"\" \"velo %s\" \"Velo manual\"\n", roffText(version))
	// Left-adjusted and unhyphenated: synopses and flags hold long words
	// (paths, --password-file) that justification would space out.
	m.WriteString(".ad l\n.nh\n")
	m.WriteString(".SH NAME\n")
	fmt.Fprintf(&m, "velo \\- %s\n", roffText(root.ShortHelp))
	m.WriteString(".SH SYNOPSIS\n")
	manSynopsis(&m, root.ShortUsage)
	m.WriteString(".SH DESCRIPTION\n")
	manParagraphs(&m, root.LongHelp)
	m.WriteString(".SH OPTIONS\n")
	manFlags(&m, root.FlagSet)
	m.WriteString(".SH COMMANDS\n")
	visit(root, func(path []string, c *ffcli.Command) {
		if c != root {
			manCommand(&m, strings.Join(path, " "), c)
		}
	})
	m.WriteString(manTail)
	return m.String()
}

const manTail = `.SH EXIT STATUS
.TP
.B 0
success (and help asked for)
.TP
.B 1
a failure: a camera, file, permission or check failed
.TP
.B 2
a usage error: an unknown command or flag, a missing or bad argument
.SH FILES
.TP
.I /etc/velo/site.yaml
The site config: cameras, masks, approvals, operators, broker, outputs.
The default of every \-\-config.
.TP
.I /var/lib/velo
The state directory (state_dir): the audit log, the MQTT outbox, legal
holds and the keys of the recordings at rest.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR mosquitto_sub (1),
.BR ffplay (1)
.PP
docs/config.md (the site config), docs/cli-json.md (JSON output),
docs/mqtt.md (topics and payloads), docs/masking.md (mask files) and
docs/regulation.md (the rules cited by ID, such as G\-3.1 and ER\-4.4) in the Velo
sources.
`

// manCommand writes one command's subsection: synopsis, summary, long
// help, subcommands and flags.
func manCommand(m *strings.Builder, path string, c *ffcli.Command) {
	fmt.Fprintf(m, ".SS \"%s\"\n", roffText(path))
	manSynopsis(m, c.ShortUsage)
	m.WriteString(".PP\n")
	m.WriteString(roffText(sentence(c.ShortHelp)+".") + "\n")
	if c.LongHelp != "" {
		manParagraphs(m, c.LongHelp)
	}
	if len(c.Subcommands) > 0 {
		m.WriteString(".PP\nSubcommands:\n")
		for _, sub := range c.Subcommands {
			fmt.Fprintf(m, ".TP\n.B %s\n%s\n", roffText(sub.Name), roffText(sub.ShortHelp))
		}
	}
	manFlags(m, c.FlagSet)
}

// manSynopsis writes a synopsis: the command's words in bold, then its
// flags and operands, a bracketed group never broken across lines.
func manSynopsis(m *strings.Builder, syn string) {
	m.WriteString(".PP\n")
	for _, w := range synopsisWords(syn) {
		if w == strings.ToLower(w) && !strings.ContainsAny(w, "-[]…") {
			fmt.Fprintf(m, ".B %s\n", roffText(w))
			continue
		}
		m.WriteString(`\%` + strings.ReplaceAll(roffText(w), " ", `\ `) + "\n")
	}
}

// manFlags lists fs's flags as tagged paragraphs.
func manFlags(m *strings.Builder, fs *flag.FlagSet) {
	for _, f := range sortedFlags(fs) {
		m.WriteString(".TP\n")
		if isBool(f) {
			fmt.Fprintf(m, ".B %s\n", roffText("--"+f.Name))
		} else {
			fmt.Fprintf(m, ".BI \"%s \" \"%s\"\n", roffText("--"+f.Name), roffText(placeholder(f)))
		}
		m.WriteString(roffText(flagDescription(f)) + "\n")
	}
}

// manParagraphs writes text's paragraphs (separated by blank lines); a
// paragraph whose lines are all indented is kept as it is laid out.
func manParagraphs(m *strings.Builder, text string) {
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		lines := strings.Split(para, "\n")
		if indented(lines) {
			m.WriteString(".PP\n.RS 4\n.nf\n")
			for _, l := range lines {
				m.WriteString(roffLine(strings.TrimPrefix(l, "  ")) + "\n")
			}
			m.WriteString(".fi\n.RE\n")
			continue
		}
		m.WriteString(".PP\n")
		for _, l := range lines {
			m.WriteString(roffLine(strings.TrimSpace(l)) + "\n")
		}
	}
}

func indented(lines []string) bool {
	for _, l := range lines {
		if !strings.HasPrefix(l, "  ") {
			return false
		}
	}
	return true
}

// roffLine is a text line: escaped, and not taken for a request.
func roffLine(s string) string { return requestSafe(roffText(s)) }

// requestSafe keeps an escaped text line from being taken for a request.
func requestSafe(escaped string) string {
	if strings.HasPrefix(escaped, ".") || strings.HasPrefix(escaped, "'") {
		return `\&` + escaped
	}
	return escaped
}

// roffText escapes text for roff: backslashes, a dash that starts a word
// (an option's minus sign, not a hyphen) and every non-ASCII character.
func roffText(s string) string {
	var b strings.Builder
	prev := ' '
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-' && strings.ContainsRune(" [|(-\"'=", prev):
			b.WriteString(`\-`)
		case r > 127:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}
