package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"velo/agent/access"
	"velo/agent/audit"
	"velo/agent/config"
	"velo/internal/safefile"
)

type passwdOptions struct {
	config, operator, pwFile, out string
	streamOnly, rotate            bool
	streamDays                    int
}

// The most --stream-days allows: a stream password's HA1 on the gateway is
// as good as the password for reading streams, so it must expire.
const maxStreamDays = 366

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
	fs.BoolVar(&o.streamOnly, "stream-password", false, "print only the operator's current RTSP stream password (for a player), write nothing")
	fs.BoolVar(&o.rotate, "rotate-stream", false, "rotate the stream password: same password, next generation, new expiry")
	fs.IntVar(&o.streamDays, "stream-days", 90, "`DAYS` the new stream password is valid (1..366)")
	return &ffcli.Command{
		Name:       "passwd",
		ShortUsage: synopsis("velo passwd", fs, ""),
		ShortHelp:  "hash an operator's password; rotate their stream password",
		LongHelp: `Hash an operator's password for the gateway (operators[].password_file)
and print the operator's RTSP stream password. The password is read
from --password-file or from the first line of standard input; it is
never stored. The gateway keeps a verifier for the CLI, the public key
of the operator's command signatures and the digest of a stream
password that expires (--stream-days); each new line moves the stream
password to the next generation, so an old one never comes back.
--rotate-stream does only that, for the same password. The current
credential is read from --out, or else from the operator's
password_file in the config. Writing a credential file is audited.`,
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
	if o.streamDays < 1 || o.streamDays > maxStreamDays {
		return usageError{msg: fmt.Sprintf("passwd: --stream-days %d out of 1..%d", o.streamDays, maxStreamDays)}
	}
	cfg, err := config.LoadUnchecked(o.config)
	if err != nil {
		return err
	}
	op := cfg.Operator(o.operator)
	if op == nil {
		return fmt.Errorf("passwd: %s has no operator %q", o.config, o.operator)
	}
	pw, err := o.password(s.stdin)
	if err != nil {
		return err
	}
	cur := o.current(cfg, op)
	if o.streamOnly {
		return o.printStream(s, cfg, pw, cur)
	}
	gen, err := o.nextGeneration(pw, cur)
	if err != nil {
		return err
	}
	expires := time.Now().AddDate(0, 0, o.streamDays)
	line := access.HashCredential(cfg.Site.ID, o.operator, pw, gen, expires) + "\n"
	if o.out == "" {
		fmt.Fprint(s.stdout, line)
	} else {
		if err := o.writeCredential(cfg, line, gen); err != nil {
			return err
		}
		fmt.Fprintf(s.stdout, "wrote %s (operator %q, site %q); a running gateway applies it on reload (SIGHUP)\n", o.out, o.operator, cfg.Site.ID)
	}
	fmt.Fprintf(s.stderr, "RTSP stream password of %s, generation %d, valid until %s (give it to their player, user %s): %s\n",
		o.operator, gen, expires.UTC().Format(time.RFC3339), o.operator, access.StreamPassword(cfg.Site.ID, o.operator, pw, gen))
	return nil
}

// currentCredential is the operator's credential as the gateway reads it
// now: from its file, a credential line or (older forms) a plaintext
// password.
type currentCredential struct {
	path string
	cred *access.Credential // nil when err is set
	err  error
}

// current reads the operator's current credential from --out, or else
// from their password_file.
func (o *passwdOptions) current(cfg *config.Config, op *config.OperatorConfig) currentCredential {
	p := o.out
	if _, err := os.Stat(p); p == "" || err != nil {
		if p = op.PasswordFile; !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(o.config), p)
		}
	}
	cur := currentCredential{path: p}
	line, err := readPassword(p)
	switch {
	case err != nil:
		cur.err = err
	case access.IsHashed(line):
		cur.cred, cur.err = access.ParseCredential(line, cfg.Site.ID, o.operator)
	default:
		cur.cred = access.PlaintextCredential(line, cfg.Site.ID, o.operator)
	}
	if cur.err != nil {
		cur.err = fmt.Errorf("%s: %w", p, cur.err)
	}
	return cur
}

// nextGeneration is the stream generation of a new credential line: one
// after the current one, so a rewritten file never brings back a stream
// password whose digest may have been read.
func (o *passwdOptions) nextGeneration(pw string, cur currentCredential) (int, error) {
	if !o.rotate {
		if cur.err != nil {
			return 1, nil // no usable credential yet: a first one
		}
		gen, _ := cur.cred.Stream()
		return gen + 1, nil
	}
	if cur.err != nil {
		return 0, fmt.Errorf("passwd: --rotate-stream needs the operator's current credential: %v", cur.err)
	}
	if pk := cur.cred.CommandPublicKey(); pk == nil {
		return 0, fmt.Errorf("passwd: --rotate-stream: %s is not a current credential line; write one: velo passwd without --rotate-stream", cur.path)
	}
	if !cur.cred.CheckPassword(pw) {
		return 0, fmt.Errorf("passwd: --rotate-stream: the password does not match %s (to change it, run velo passwd without --rotate-stream)", cur.path)
	}
	gen, _ := cur.cred.Stream()
	return gen + 1, nil
}

// printStream prints the operator's current stream password: the
// generation in their credential decides it.
func (o *passwdOptions) printStream(s streams, cfg *config.Config, pw string, cur currentCredential) error {
	if cur.err != nil {
		return fmt.Errorf("passwd: the stream password depends on the operator's credential: %v", cur.err)
	}
	if !cur.cred.CheckPassword(pw) {
		return fmt.Errorf("passwd: the password does not match %s", cur.path)
	}
	gen, expires := cur.cred.Stream()
	fmt.Fprintln(s.stdout, access.StreamPassword(cfg.Site.ID, o.operator, pw, gen))
	if expires.IsZero() {
		fmt.Fprintf(s.stderr, "stream password generation %d never expires: %s is an older form; rewrite it with velo passwd\n", gen, cur.path)
	} else {
		fmt.Fprintf(s.stderr, "stream password generation %d, valid until %s\n", gen, expires.UTC().Format(time.RFC3339))
	}
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
func (o *passwdOptions) writeCredential(cfg *config.Config, line string, gen int) error {
	if err := safefile.WriteFile(o.out, []byte(line), 0o600); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	al, err := audit.Open(config.AuditDir(cfg), cfg.AuditOptions())
	if err == nil {
		_, err = al.Append(audit.Entry{Actor: "local:" + localUser(), Action: "credential_set", Outcome: "ok",
			Detail: fmt.Sprintf("credential of operator %q written to %s (stream password generation %d)", o.operator, o.out, gen),
			Fields: map[string]string{"operator": o.operator, "stream_generation": strconv.Itoa(gen)}})
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
	if err == nil && access.IsHashed(pw) {
		return "", fmt.Errorf("password file %s holds the gateway's hashed credential, not the operator's password", path)
	}
	return pw, err
}
