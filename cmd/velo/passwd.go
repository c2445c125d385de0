package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"velo/agent"
	"velo/agent/audit"
)

// cmdPasswd writes an operator's credential file: the slow hash of their
// password (agent/credentials.go), for operators[].password_file. It
// also prints the operator's RTSP stream password.
func cmdPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("passwd", stderr, "velo passwd: hash an operator's password for the gateway (operators[].password_file) and print the operator's RTSP stream password. The password is read from --password-file or from the first line of standard input; it is never stored.")
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "site config (its site id and the operator's name salt the hash)")
	opName := fs.String("operator", "", "operator name (required; must be in the config)")
	pwFile := fs.String("password-file", "", "file whose first line is the password (default: standard input)")
	out := fs.String("out", "", "credential file to write (mode 0600); default: standard output")
	streamOnly := fs.Bool("stream-password", false, "print only the operator's RTSP stream password (for a player), write nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *opName == "" {
		return usageError{"passwd: --operator is required"}
	}
	cfg, err := agent.LoadUnchecked(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Operator(*opName) == nil {
		return fmt.Errorf("passwd: %s has no operator %q", *cfgPath, *opName)
	}
	var pw string
	if *pwFile != "" {
		if pw, err = readOperatorPassword(*pwFile); err != nil {
			return err
		}
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("passwd: no password on standard input")
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < 10 {
		return fmt.Errorf("passwd: operator %q: the password must have at least 10 characters", *opName)
	}
	stream := agent.StreamPassword(cfg.Site.ID, *opName, pw)
	if *streamOnly {
		fmt.Fprintln(stdout, stream)
		return nil
	}
	line := agent.HashCredential(cfg.Site.ID, *opName, pw) + "\n"
	if *out == "" {
		fmt.Fprint(stdout, line)
	} else {
		tmp := *out + ".tmp"
		if err := os.WriteFile(tmp, []byte(line), 0o600); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		if err := os.Rename(tmp, *out); err != nil {
			return fmt.Errorf("passwd: %w", err)
		}
		// A credential change is audited (who ran it: the local user).
		al, err := agent.OpenAudit(cfg)
		if err == nil {
			_, err = al.Append(audit.Entry{Actor: "local:" + localUser(), Action: "credential_set", Outcome: "ok",
				Detail: fmt.Sprintf("credential of operator %q written to %s", *opName, *out), Fields: map[string]string{"operator": *opName}})
		}
		if err != nil {
			return fmt.Errorf("passwd: %s written, but the audit entry failed: %w", *out, err)
		}
		fmt.Fprintf(stdout, "wrote %s (operator %q, site %q)\n", *out, *opName, cfg.Site.ID)
	}
	fmt.Fprintf(stderr, "RTSP stream password of %s (give it to their player, user %s): %s\n", *opName, *opName, stream)
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
