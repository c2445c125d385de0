package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// Help is generated from the command declarations. Conventions of a
// flag's usage string: a `quoted` word names its value (as in package
// flag); "(required" in it marks the flag required, so the synopsis shows
// it without brackets.

const helpWidth = 78

// commandHelp is a command's help, printed by `velo help CMD [SUB]` and by
// `velo CMD [SUB] --help` alike.
func commandHelp(c *ffcli.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n%s\n\n", fill(synopsisWords(c.ShortUsage), "  ", "      "))
	fmt.Fprintf(&b, "%s.\n", sentence(c.ShortHelp))
	if c.LongHelp != "" {
		fmt.Fprintf(&b, "\n%s\n", c.LongHelp)
	}
	if len(c.Subcommands) > 0 {
		b.WriteString("\nSubcommands:\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, sub := range c.Subcommands {
			fmt.Fprintf(tw, "  %s\t%s\n", sub.Name, sub.ShortHelp)
		}
		_ = tw.Flush()
		fmt.Fprintf(&b, "\nRun '%s SUBCOMMAND --help' for a subcommand's flags.\n", strings.TrimSuffix(c.ShortUsage, " SUBCOMMAND [flags]"))
	}
	writeFlags(&b, c.FlagSet)
	return strings.TrimRight(b.String(), "\n")
}

// overview is velo's help: every command with its summary.
func overview(root *ffcli.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "velo — %s\n\nUsage:\n  %s\n\n%s\n\nCommands:\n", root.ShortHelp, root.ShortUsage, root.LongHelp)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	visit(root, func(path []string, c *ffcli.Command) {
		if c != root && len(c.Subcommands) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.Join(path[1:], " "), c.ShortHelp)
		}
	})
	_ = tw.Flush()
	writeFlags(&b, root.FlagSet)
	b.WriteString("\nRun 'velo help COMMAND [SUBCOMMAND]' or 'velo COMMAND [SUBCOMMAND] --help'\n" +
		"for a command's flags, 'velo help --man' for the manual page. Exit status:\n" +
		"0 success, 1 failure, 2 usage error.\n")
	return strings.TrimRight(b.String(), "\n")
}

// writeFlags lists fs's flags, each with its value, usage and default.
func writeFlags(b *strings.Builder, fs *flag.FlagSet) {
	flags := sortedFlags(fs)
	if len(flags) == 0 {
		return
	}
	b.WriteString("\nFlags:\n")
	for _, f := range flags {
		fmt.Fprintf(b, "  %s\n%s\n", flagTerm(f), wrap(flagDescription(f), "      ", "      "))
	}
}

// sortedFlags are fs's flags, required ones first, each part by name.
func sortedFlags(fs *flag.FlagSet) []*flag.Flag {
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.SliceStable(flags, func(i, j int) bool { return isRequired(flags[i]) && !isRequired(flags[j]) })
	return flags
}

// synopsis is a command's usage line, built from its flags: path, the
// required flags, the optional ones in brackets, then operands.
func synopsis(path string, fs *flag.FlagSet, operands string) string {
	words := []string{path}
	for _, f := range sortedFlags(fs) {
		w := "--" + f.Name
		switch {
		case isBool(f):
		case isRequired(f):
			w += " " + placeholder(f)
		case hasDefault(f):
			w += " " + f.DefValue
		default:
			w += " " + placeholder(f)
		}
		if _, ok := f.Value.(*stringList); ok {
			w += " …"
		}
		if !isRequired(f) {
			w = "[" + w + "]"
		}
		words = append(words, w)
	}
	if operands != "" {
		words = append(words, operands)
	}
	return strings.Join(words, " ")
}

// flagTerm is "--name VALUE" (bool flags have no value).
func flagTerm(f *flag.Flag) string {
	if isBool(f) {
		return "--" + f.Name
	}
	return "--" + f.Name + " " + placeholder(f)
}

// flagDescription is the usage of f and its default, if any.
func flagDescription(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	if hasDefault(f) {
		usage += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	if _, ok := f.Value.(*stringList); ok {
		usage += " (repeatable)"
	}
	return usage
}

func placeholder(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	if name == "" {
		name = "value"
	}
	if strings.ToLower(name) == name {
		name = strings.ToUpper(name)
	}
	return name
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func isRequired(f *flag.Flag) bool { return strings.Contains(f.Usage, "(required") }

func hasDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return false
	}
	return true
}

// sentence capitalises a summary and drops a final full stop (added back
// by the caller).
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return strings.TrimSuffix(string(unicode.ToUpper(r))+s[n:], ".")
}

// wrap fills text to helpWidth columns, the first line indented by first
// and the others by rest.
func wrap(text, first, rest string) string {
	return fill(strings.Fields(text), first, rest)
}

// synopsisWords splits a synopsis into the units a line may not break:
// words, and bracketed groups such as "[--iface NAME …]".
func synopsisWords(s string) []string {
	var words []string
	depth := 0
	for _, w := range strings.Fields(s) {
		if depth > 0 {
			words[len(words)-1] += " " + w
		} else {
			words = append(words, w)
		}
		depth += strings.Count(w, "[") - strings.Count(w, "]")
	}
	return words
}

// fill lays words out in lines of at most helpWidth columns (a longer
// word gets its own line), the first indented by first, the others by
// rest.
func fill(words []string, first, rest string) string {
	var b strings.Builder
	line := first
	fresh := true
	for _, w := range words {
		if !fresh && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > helpWidth {
			b.WriteString(line + "\n")
			line, fresh = rest, true
		}
		if !fresh {
			line += " "
		}
		line += w
		fresh = false
	}
	b.WriteString(line)
	return b.String()
}
