package main

import (
	"bytes"
	"flag"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// declared is one command of the tree as declared: its path below velo
// ("recording", "list") and its declaration.
type declared struct {
	path []string
	cmd  *ffcli.Command
}

// declaredCommands are every command below the root, parents first.
func declaredCommands() []declared {
	var out []declared
	visit(newRoot(streams{}), func(path []string, c *ffcli.Command) {
		if len(path) > 1 {
			out = append(out, declared{path: path[1:], cmd: c})
		}
	})
	return out
}

// helpOK runs velo with args and returns its standard output, failing
// the test unless it exits 0 with nothing on standard error.
func helpOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, args...)
	if code != 0 || errs != "" || out == "" {
		t.Fatalf("velo %s: exit %d, stderr %q, stdout %d bytes", strings.Join(args, " "), code, errs, len(out))
	}
	return out
}

// `velo help X [SUB]` and `velo X [SUB] --help` (and -h) print the same.
func TestHelpSameEitherWay(t *testing.T) {
	cmds := declaredCommands()
	if len(cmds) < 20 {
		t.Fatalf("only %d commands declared", len(cmds))
	}
	for _, d := range cmds {
		name := strings.Join(d.path, " ")
		viaHelp := helpOK(t, append([]string{"help"}, d.path...)...)
		for _, flagArg := range []string{"--help", "-h"} {
			if got := helpOK(t, append(slices.Clone(d.path), flagArg)...); got != viaHelp {
				t.Errorf("velo %s %s differs from velo help %s:\n%s\n----\n%s", name, flagArg, name, got, viaHelp)
			}
		}
		if !strings.Contains(viaHelp, "velo "+name) {
			t.Errorf("help of %s does not name it:\n%s", name, viaHelp)
		}
	}
}

// Every flag of every flag set is in its command's help and synopsis.
func TestHelpListsEveryFlag(t *testing.T) {
	for _, d := range declaredCommands() {
		help := helpOK(t, append([]string{"help"}, d.path...)...)
		if missing := missingFlags(help, d.cmd.FlagSet); len(missing) > 0 {
			t.Errorf("help of %s lacks %v:\n%s", strings.Join(d.path, " "), missing, help)
		}
		d.cmd.FlagSet.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(d.cmd.ShortUsage, "--"+f.Name+" ") && !strings.Contains(d.cmd.ShortUsage, "--"+f.Name+"]") {
				t.Errorf("synopsis of %s lacks --%s: %s", strings.Join(d.path, " "), f.Name, d.cmd.ShortUsage)
			}
		})
	}
}

// missingFlags are the flags of fs whose entry (a line "  --name …",
// then its usage and its default) is not in help.
func missingFlags(help string, fs *flag.FlagSet) []string {
	flat := strings.Join(strings.Fields(help), " ")
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		entry := false
		for _, line := range strings.Split(help, "\n") {
			if line == "  --"+f.Name || strings.HasPrefix(line, "  --"+f.Name+" ") {
				entry = true
			}
		}
		usage = strings.Join(strings.Fields(usage), " ")
		if !entry || !strings.Contains(flat, usage) || (hasDefault(f) && !strings.Contains(flat, "(default "+f.DefValue+")")) {
			missing = append(missing, f.Name)
		}
	})
	return missing
}

// The check above fails when a flag is missing from the help: a flag set
// with one more flag than the help shows, and a help with one flag's
// entry cut out, are both caught.
func TestMissingFlagIsCaught(t *testing.T) {
	probe, err := lookup(newRoot(streams{}), []string{"probe"})
	if err != nil {
		t.Fatal(err)
	}
	help := commandHelp(probe)
	if m := missingFlags(help, probe.FlagSet); len(m) != 0 {
		t.Fatalf("complete help reported missing %v", m)
	}
	probe.FlagSet.Bool("frobnicate", false, "an undocumented flag")
	if m := missingFlags(help, probe.FlagSet); !slices.Equal(m, []string{"frobnicate"}) {
		t.Errorf("an extra flag: missing = %v, want [frobnicate]", m)
	}
	fs := newFlagSet("probe")
	fs.Duration("timeout", 0, "per-call timeout")
	cut := strings.Replace(help, "  --timeout DURATION\n", "", 1)
	if m := missingFlags(cut, fs); !slices.Equal(m, []string{"timeout"}) {
		t.Errorf("an entry cut out: missing = %v, want [timeout]", m)
	}
}

// The overview (velo help, velo --help, velo -h; velo alone on stderr,
// exit 2) lists every command with its summary.
func TestOverviewListsEveryCommand(t *testing.T) {
	out := helpOK(t, "help")
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		if got := helpOK(t, args...); got != out {
			t.Errorf("velo %s differs from velo help", args[0])
		}
	}
	if so, se, code := runCLI(t); code != 2 || so != "" || se != out {
		t.Errorf("velo alone: exit %d, stdout %q, stderr is the overview: %v", code, so, se == out)
	}
	lines := strings.Split(out, "\n")
	for _, d := range declaredCommands() {
		if len(d.cmd.Subcommands) > 0 {
			continue
		}
		want := "  " + strings.Join(d.path, " ") + " "
		if !slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, want) && strings.HasSuffix(l, " "+d.cmd.ShortHelp)
		}) {
			t.Errorf("overview lacks %q with its summary %q", strings.TrimSpace(want), d.cmd.ShortHelp)
		}
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			t.Errorf("overview line over 80 columns: %q", l)
		}
	}
}

// velo help --man: every command has its subsection with every flag, and
// groff finds nothing to warn about.
func TestManPage(t *testing.T) {
	man := helpOK(t, "help", "--man")
	if !strings.HasPrefix(man, ".TH VELO 1 ") {
		t.Errorf("no .TH header: %.60q", man)
	}
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "FILES", "SEE ALSO"} {
		if !strings.Contains(man, "\n.SH "+sec+"\n") {
			t.Errorf("no %s section", sec)
		}
	}
	for _, f := range []string{"/etc/velo/site.yaml", "/var/lib/velo"} {
		if !strings.Contains(man, "\n.I "+f+"\n") {
			t.Errorf("FILES lacks %s", f)
		}
	}
	sections := strings.Split(man, "\n.SS ")
	for _, d := range declaredCommands() {
		head := `"velo ` + strings.Join(d.path, " ") + `"` + "\n"
		i := slices.IndexFunc(sections, func(s string) bool { return strings.HasPrefix(s, head) })
		if i < 0 {
			t.Errorf("no subsection for %s", head)
			continue
		}
		d.cmd.FlagSet.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(sections[i], roffText("--"+f.Name)) {
				t.Errorf("subsection %s lacks --%s", strings.TrimSpace(head), f.Name)
			}
		})
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Fatal("groff not installed (apt install groff)")
	}
	cmd := exec.Command("groff", "-man", "-ww", "-z")
	cmd.Stdin = strings.NewReader(man)
	var diag bytes.Buffer
	cmd.Stdout, cmd.Stderr = &diag, &diag
	if err := cmd.Run(); err != nil || diag.Len() > 0 {
		t.Errorf("groff -man -ww -z: %v\n%s", err, diag.String())
	}
}

// A group without a subcommand, an unknown subcommand or command, an
// unknown flag, and a stray argument are usage errors (exit 2).
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"recording"}, "subcommands are list, view, export, hold and release"},
		{[]string{"audit", "frob"}, `unknown subcommand "frob"`},
		{[]string{"help", "frob"}, `unknown command "frob"`},
		{[]string{"help", "mask", "frob"}, `unknown command "mask frob"`},
		{[]string{"probe", "--frob"}, "flag provided but not defined: -frob"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"config", "check"}, "velo config check FILE"},
	}
	for _, tc := range cases {
		_, se, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(se, tc.want) {
			t.Errorf("velo %s: exit %d, stderr %q; want exit 2 with %q", strings.Join(tc.args, " "), code, se, tc.want)
		}
	}
	if so, _, code := runCLI(t, "--version"); code != 0 || so != "velo "+version+"\n" {
		t.Errorf("--version: exit %d, %q", code, so)
	}
}
