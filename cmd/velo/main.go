// Command velo is the Velo gateway agent's CLI: the agent (run), config
// checks, signed MQTT commands, discovery and probing of ONVIF cameras,
// mask previews and self-tests, the audit log, recordings, the site
// dossier and the information signs.
//
// The commands are declared as data (commands.go): each is an
// ffcli.Command with its name, summary, long help, flag set and run
// function. The help, the overview and the man page are generated from
// those declarations (help.go, man.go), so they cannot drift from the
// flags.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit statuses (docs/cli-json.md).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one velo command line and returns its exit status: 0 for
// success and for help asked for, 1 for a failure, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(streams{stdin: os.Stdin, stdout: stdout, stderr: stderr})
	if len(args) == 0 {
		fmt.Fprintln(stderr, root.UsageFunc(root))
		return exitUsage
	}
	// The flag package writes help and parse errors to the flag sets'
	// output: collect it, then send it where it belongs.
	var flagOut bytes.Buffer
	visit(root, func(_ []string, c *ffcli.Command) { c.FlagSet.SetOutput(&flagOut) })
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = stdout.Write(flagOut.Bytes())
			return exitOK
		}
		_, _ = stderr.Write(flagOut.Bytes())
		fmt.Fprintln(stderr, "velo:", flagError(err))
		return exitUsage
	}
	return exitStatus(root.Run(ctx), stderr)
}

// exitStatus reports err on stderr and maps it to velo's exit status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "velo:", err)
	var ue usageError
	if errors.As(err, &ue) {
		if ue.overview != "" {
			fmt.Fprintf(stderr, "\n%s\n", ue.overview)
		}
		return exitUsage
	}
	return exitFailure
}

// flagError is the flag package's own message, without ff's wrapping.
func flagError(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// usageError is a command line velo cannot run (exit status 2); overview,
// if set, is printed after it.
type usageError struct {
	msg      string
	overview string
}

func (u usageError) Error() string { return u.msg }

// streams are a command's standard streams (run's, so tests capture them).
type streams struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}
