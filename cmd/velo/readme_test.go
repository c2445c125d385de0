package main

import (
	"os"
	"strings"
	"testing"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// The README's command list is the CLI's own synopses, one per command
// (continuation lines indented), so it cannot drift from the flags.
func TestReadmeCommandsMatchTheCLI(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "## Commands\n\n```\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ``` block under ## Commands")
	}
	var want strings.Builder
	visit(newRoot(streams{}), func(path []string, c *ffcli.Command) {
		if len(path) > 1 && len(c.Subcommands) == 0 {
			want.WriteString(fill(synopsisWords(c.ShortUsage), "", "    ") + "\n")
		}
	})
	if block != want.String() {
		t.Errorf("README.md's command block differs from the CLI's synopses; it should read:\n%s", want.String())
	}
}
