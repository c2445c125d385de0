package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/internal/safefile"
)

type passwdOptions struct {
	config, operator, pwFile, out string
	streamOnly                    bool
}

// passwdCommand writes an operator's credential file: the slow hash of
// their password (agent/access/credentials.go), for operators[].password_file.
// It also prints the operator's RTSP stream password.
func passwdCommand(s streams) *ffcli.Command {
	fs := newFlagSet("passwd")
	o := &passwdOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "site config `FILE` (its site id and the operator's name salt the hash)")
	fs.StringVar(&o.operator, "operator", "", "operator `NAME` (required; must be in the config)")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` whose first line is the password (default: standard input)")
	fs.StringVar(&o.out, "out", "", "credential `FILE` to write (mode 0600); default: standard output")
	fs.BoolVar(&o.streamOnly, "stream-password", false, "print only the operator's RTSP stream password (for a player), write nothing")
	return &ffcli.Command{
		Name:       "passwd",
		ShortUsage: synopsis("velo passwd", fs, ""),
		ShortHelp:  "hash an operator's password; print their stream password",
		LongHelp: `Hash an operator's password for the gateway (operators[].password_file)
and print the operator's RTSP stream password. The password is read
from --password-file or from the first line of standard input; it is
never stored. Writing a credential file is audited.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if err := noOperands(fs, args); err != nil {
				return err
			}
			return o.run(s)
		},
	}
}

func (o *passwdOptions) run(s streams) error {
	if o.operator == "" {
		return usageError{msg: "passwd: --operator is required"}
	}
	cfg, err := config.LoadUnchecked(o.config)
	if err != nil {
		return err
	}
	if cfg.Operator(o.operator) == nil {
		return fmt.Errorf("passwd: %s has no operator %q", o.config, o.operator)
	}
	pw, err := o.password(s.stdin)
	if err != nil {
		return err
	}
	stream := access.StreamPassword(cfg.Site.ID, o.operator, pw)
	if o.streamOnly {
		fmt.Fprintln(s.stdout, stream)
		return nil
	}
	line := access.HashCredential(cfg.Site.ID, o.operator, pw) + "\n"
	if o.out == "" {
		fmt.Fprint(s.stdout, line)
	} else {
		if err := o.writeCredential(cfg, line); err != nil {
			return err
		}
		fmt.Fprintf(s.stdout, "wrote %s (operator %q, site %q)\n", o.out, o.operator, cfg.Site.ID)
	}
	fmt.Fprintf(s.stderr, "RTSP stream password of %s (give it to their player, user %s): %s\n", o.operator, o.operator, stream)
	return nil
}

// password reads the password from --password-file or stdin.
func (o *passwdOptions) password(stdin io.Reader) (string, error) {
	var pw string
	if o.pwFile != "" {
		var err error
		if pw, err = readOperatorPassword(o.pwFile); err != nil {
			return "", err
		}
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("passwd: no password on standard input")
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < 10 {
		return "", fmt.Errorf("passwd: operator %q: the password must have at least 10 characters", o.operator)
	}
	return pw, nil
}

// writeCredential writes the credential file and audits it (who ran it:
// the local user).
func (o *passwdOptions) writeCredential(cfg *config.Config, line string) error {
	if err := safefile.WriteFile(o.out, []byte(line), 0o600); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	al, err := audit.Open(config.AuditDir(cfg), cfg.AuditOptions())
	if err == nil {
		_, err = al.Append(audit.Entry{Actor: "local:" + localUser(), Action: "credential_set", Outcome: "ok",
			Detail: fmt.Sprintf("credential of operator %q written to %s", o.operator, o.out), Fields: map[string]string{"operator": o.operator}})
	}
	if err != nil {
		return fmt.Errorf("passwd: %s written, but the audit entry failed: %w", o.out, err)
	}
	return nil
}

// localUser names who runs the command (sudo's caller first).
func localUser() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := os.Getenv(k); u != "" {
			return u
		}
	}
	return fmt.Sprintf("uid%d", os.Getuid())
}

// readOperatorPassword reads an operator's own password file (for the
// CLI), refusing the gateway's hashed copy.
func readOperatorPassword(path string) (string, error) {
	pw, err := readPassword(path)
	if err == nil && strings.HasPrefix(pw, "$velo1$") {
		return "", fmt.Errorf("password file %s holds the gateway's hashed credential, not the operator's password", path)
	}
	return pw, err
}
