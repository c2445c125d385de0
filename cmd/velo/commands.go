package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

const rootHelp = `Velo runs on a gateway beside IP cameras. Per camera it checks the
camera's identity, locks PTZ to the approved preset, verifies every
frame against the approved view's reference picture, masks the video
before it is encoded and serves the masked stream to operators; it
publishes status, camera state and events over MQTT, takes signed
commands, keeps a hash-chained audit log, and records, retains and
exports masked segments. The other commands find and read cameras, check
masks and configs, and write what the authorisation request needs.

Credentials are read from a file (its first line) and never from the
command line; printed URLs never carry credentials. JSON output is
documented in docs/cli-json.md, the site config in docs/config.md.`

// newRoot declares velo's commands. Its help and every command's help and
// the man page are generated from these declarations.
func newRoot(s streams) *ffcli.Command {
	fs := newFlagSet("velo")
	showVersion := fs.Bool("version", false, "print the version and exit")
	root := &ffcli.Command{
		Name:       "velo",
		ShortUsage: "velo COMMAND [SUBCOMMAND] [flags]",
		ShortHelp:  "ONVIF privacy agent for camera gateways",
		LongHelp:   rootHelp,
		FlagSet:    fs,
		UsageFunc:  overview,
		Subcommands: []*ffcli.Command{
			runCommand(s), commandCommand(s), configCommand(s), discoverCommand(s),
			probeCommand(s), maskCommand(s), auditCommand(s), recordingCommand(s),
			viewCommand(s), dossierCommand(s), signCommand(s), passwdCommand(s), versionCommand(s),
			fleetCommand(s),
		},
	}
	root.Subcommands = append(root.Subcommands, helpCommand(s, root))
	root.Exec = func(_ context.Context, args []string) error {
		if len(args) == 0 && *showVersion {
			fmt.Fprintln(s.stdout, "velo", version)
			return nil
		}
		if len(args) == 0 {
			return usageError{msg: "no command", overview: overview(root)}
		}
		return usageError{msg: fmt.Sprintf("unknown command %q", args[0]), overview: overview(root)}
	}
	visit(root, func(_ []string, c *ffcli.Command) {
		if c.UsageFunc == nil {
			c.UsageFunc = commandHelp
		}
	})
	return root
}

// group declares a command that only holds subcommands; run without one
// (or with an unknown one) it is a usage error that lists them.
func group(path, summary, long string, subs ...*ffcli.Command) *ffcli.Command {
	words := strings.Fields(path)
	name := words[len(words)-1]
	c := &ffcli.Command{
		Name:        name,
		ShortUsage:  path + " SUBCOMMAND [flags]",
		ShortHelp:   summary,
		LongHelp:    long,
		FlagSet:     newFlagSet(path),
		Subcommands: subs,
	}
	c.Exec = func(_ context.Context, args []string) error {
		names := make([]string, len(subs))
		for i, sub := range subs {
			names[i] = sub.Name
		}
		list := strings.Join(names, ", ")
		if i := strings.LastIndex(list, ", "); i >= 0 {
			list = list[:i] + " and " + list[i+2:]
		}
		if len(args) == 0 {
			return usageError{msg: fmt.Sprintf("%s: subcommands are %s", name, list)}
		}
		return usageError{msg: fmt.Sprintf("%s: unknown subcommand %q; subcommands are %s", name, args[0], list)}
	}
	return c
}

func versionCommand(s streams) *ffcli.Command {
	fs := newFlagSet("version")
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: synopsis("velo version", fs, ""),
		ShortHelp:  "print the version",
		FlagSet:    fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			fmt.Fprintln(s.stdout, "velo", version)
			return nil
		},
	}
}

func helpCommand(s streams, root *ffcli.Command) *ffcli.Command {
	fs := newFlagSet("help")
	man := fs.Bool("man", false, "print the manual page velo(1), in roff, instead")
	return &ffcli.Command{
		Name:       "help",
		ShortUsage: synopsis("velo help", fs, "[COMMAND [SUBCOMMAND]]"),
		ShortHelp:  "print the overview, a command's help or the man page",
		LongHelp: `Without a command, print the overview of velo's commands. With one,
print its help: the same text as 'velo COMMAND [SUBCOMMAND] --help'.
With --man, print the manual page velo(1) (man -l - reads it).`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if *man {
				if err := noOperands(fs, args); err != nil {
					return err
				}
				_, err := fmt.Fprint(s.stdout, manPage(root))
				return err
			}
			c, err := lookup(root, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.stdout, c.UsageFunc(c))
			return nil
		},
	}
}

// lookup finds the command that path (names below root) names.
func lookup(root *ffcli.Command, path []string) (*ffcli.Command, error) {
	c := root
	for i, name := range path {
		next := subcommand(c, name)
		if next == nil {
			return nil, usageError{msg: fmt.Sprintf("unknown command %q", strings.Join(path[:i+1], " ")), overview: overview(root)}
		}
		c = next
	}
	return c, nil
}

// subcommand is c's subcommand called name, matched as ffcli matches it.
func subcommand(c *ffcli.Command, name string) *ffcli.Command {
	for _, sub := range c.Subcommands {
		if strings.EqualFold(sub.Name, name) {
			return sub
		}
	}
	return nil
}

// visit calls fn on c and every command below it, parents first, with
// the command's path ("velo", "recording", "list").
func visit(c *ffcli.Command, fn func(path []string, c *ffcli.Command)) {
	var walk func(path []string, c *ffcli.Command)
	walk = func(path []string, c *ffcli.Command) {
		path = append(path[:len(path):len(path)], c.Name)
		fn(path, c)
		for _, sub := range c.Subcommands {
			walk(path, sub)
		}
	}
	walk(nil, c)
}

func newFlagSet(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}

// noOperands refuses arguments left after the flags.
func noOperands(fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return usageError{msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), args[0])}
	}
	return nil
}
