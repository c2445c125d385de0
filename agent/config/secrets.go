package config

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"velo/agent/access"
	"velo/internal/safefile"
)

// Secret is a password read from a file. Formatted with any verb, or
// marshalled as JSON, text or YAML, it is "(secret)", so it cannot leak
// into logs, errors or payloads by accident; Reveal gives the value to the
// one place that sends it to its own host.
type Secret string

const hidden = "(secret)"

// String hides the value.
func (Secret) String() string { return hidden }

// Format hides the value from every fmt verb (%v, %s, %q, %d, %#v, …).
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, hidden) }

// MarshalText hides the value from encoding/json and other text encoders.
func (Secret) MarshalText() ([]byte, error) { return []byte(hidden), nil }

// MarshalYAML hides the value from YAML.
func (Secret) MarshalYAML() (any, error) { return hidden, nil }

// Reveal returns the value.
func (s Secret) Reveal() string { return string(s) }

// readSecrets reads the files the config names (relative to its folder):
// camera and broker passwords, the broker's key and certificates, operator
// credentials. Each is checked as readSecretBytes says.
func (c *Config) readSecrets(base string) error {
	c.Broker.base = base
	for i := range c.Cameras {
		if c.Cameras[i].PasswordFile != "" {
			pw, err := c.readSecretFile(fmt.Sprintf("cameras[%d].password_file", i), c.Cameras[i].PasswordFile)
			if err != nil {
				return err
			}
			c.Cameras[i].Password = pw
		}
		if err := c.checkCameraCredential(i); err != nil {
			return err
		}
	}
	if err := c.readBrokerFiles(); err != nil {
		return err
	}
	if err := c.readRTSPSFiles(); err != nil {
		return err
	}
	for i := range c.Operators {
		if err := c.readOperatorCredential(i); err != nil {
			return err
		}
	}
	return nil
}

// readSecretFile returns the first line of a secret file.
func (c *Config) readSecretFile(field, p string) (Secret, error) {
	data, err := c.readSecretBytes(field, p)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	if pw = strings.TrimRight(pw, "\r"); pw == "" {
		return "", c.fieldError(field, "%s: empty first line", c.path(p))
	}
	return Secret(pw), nil
}

// readSecretBytes reads a secret file, checked on the open file: a
// regular file (never a link, a FIFO or a device: velo run would block
// on a FIFO), at most safefile.MaxSecretBytes, readable by its owner
// only, and owned by one of secretOwners.
func (c *Config) readSecretBytes(field, p string) ([]byte, error) {
	data, err := safefile.Read(c.path(p), safefile.ReadOptions{
		MaxBytes: safefile.MaxSecretBytes, NoLinks: true, OwnerOnly: true, Owners: c.secretOwners()})
	if err != nil {
		return nil, c.fieldError(field, "%v", err)
	}
	return data, nil
}

// secretOwners are who may own a secret file: root and the user running
// velo, who can read it anyway; another user could have chosen the
// password. Run as root (the CLI on the gateway), also the owner of
// state_dir: the service account, whose secrets they are (its unit runs
// it as that user, which cannot read root's 0600 files).
func (c *Config) secretOwners() []int {
	owners := []int{0}
	if uid := os.Geteuid(); uid != 0 {
		return append(owners, uid)
	}
	if st, err := os.Stat(c.StateDir); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			owners = append(owners, int(sys.Uid))
		}
	}
	return owners
}

func (c *Config) readBrokerFiles() error {
	b := &c.Broker
	if b.PasswordFile != "" {
		pw, err := c.readSecretFile("broker.password_file", b.PasswordFile)
		if err != nil {
			return err
		}
		b.Password = pw
	}
	if b.KeyFile != "" {
		if _, err := c.readSecretFile("broker.key_file", b.KeyFile); err != nil {
			return err
		}
	}
	for _, f := range []struct{ field, path string }{{"broker.ca_file", b.CAFile}, {"broker.cert_file", b.CertFile}} {
		if f.path == "" {
			continue
		}
		if _, err := safefile.ReadFile(c.path(f.path), safefile.MaxConfigBytes); err != nil {
			return c.fieldError(f.field, "%v", err)
		}
	}
	return nil
}

// StreamExpiryWarning is how long before its expiry config check warns
// about an operator's stream password.
const StreamExpiryWarning = 14 * 24 * time.Hour

// readRTSPSFiles checks the relay's TLS key (owner-only) and that it
// loads with its certificate.
func (c *Config) readRTSPSFiles() error {
	if c.Outputs.RTSPS.KeyFile == "" {
		return nil
	}
	if _, err := c.readSecretFile("outputs.rtsps.key_file", c.Outputs.RTSPS.KeyFile); err != nil {
		return err
	}
	_, err := c.RTSPSTLS()
	return err
}

// readOperatorCredential reads operator i's credential line, or (with a
// warning naming the fix) an older form: a $velo1$ line or a plaintext
// password, neither of which can verify a signed command.
func (c *Config) readOperatorCredential(i int) error {
	op := &c.Operators[i]
	field := fmt.Sprintf("operators[%d].password_file", i)
	pw, err := c.readSecretFile(field, op.PasswordFile)
	if err != nil {
		return err
	}
	rewrite := fmt.Sprintf("velo passwd --config %s --operator %s --password-file YOUR-PASSWORD-FILE --out %s", c.file, op.Name, c.path(op.PasswordFile))
	if !access.IsHashed(pw.Reveal()) {
		op.cred = access.PlaintextCredential(pw.Reveal(), c.Site.ID, op.Name)
		op.noCommandKey = fmt.Errorf("operator %q: %s %s holds a plaintext password, which cannot verify signed commands: re-run velo passwd to write its credential line", op.Name, field, op.PasswordFile)
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: %s holds a plaintext password; signed commands from this operator are refused; store its slow hash instead: velo passwd --config %s --operator %s --password-file %s --out %s",
			field, op.Name, op.PasswordFile, c.file, op.Name, op.PasswordFile, op.PasswordFile))
		return nil
	}
	cr, err := access.ParseCredential(pw.Reveal(), c.Site.ID, op.Name)
	if err != nil {
		return c.fieldError(field, "%s: %v", op.PasswordFile, err)
	}
	op.cred = cr
	if cr.CommandPublicKey() == nil {
		op.noCommandKey = fmt.Errorf("operator %q: %s %s is an old $velo1$ credential, which cannot verify signed commands: re-run velo passwd to rewrite it", op.Name, field, op.PasswordFile)
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: %s is an old $velo1$ credential: signed commands from this operator are refused and its stream password never expires; re-run %s",
			field, op.Name, op.PasswordFile, rewrite))
		return nil
	}
	c.warnStreamExpiry(field, op, time.Now())
	return nil
}

// warnStreamExpiry warns about a stream password expired or expiring
// within StreamExpiryWarning.
func (c *Config) warnStreamExpiry(field string, op *OperatorConfig, now time.Time) {
	gen, expires := op.cred.Stream()
	rotate := fmt.Sprintf("velo passwd --config %s --operator %s --password-file YOUR-PASSWORD-FILE --rotate-stream --out %s", c.file, op.Name, c.path(op.PasswordFile))
	at := expires.UTC().Format(time.RFC3339)
	switch left := expires.Sub(now); {
	case left <= 0:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: stream password generation %d in %s expired at %s: live view is refused until it is rotated: %s",
			field, op.Name, gen, op.PasswordFile, at, rotate))
	case left <= StreamExpiryWarning:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: stream password generation %d in %s expires at %s (in %.1f days): rotate it: %s",
			field, op.Name, gen, op.PasswordFile, at, left.Hours()/24, rotate))
	}
}

// CommandPublicKey verifies op's signed commands; the error names op's
// file and the fix when it holds an older form that verifies none.
func (op *OperatorConfig) CommandPublicKey() (ed25519.PublicKey, error) {
	if op.cred == nil {
		return nil, fmt.Errorf("operator %q: credential not loaded", op.Name)
	}
	if k := op.cred.CommandPublicKey(); k != nil {
		return k, nil
	}
	return nil, op.noCommandKey
}

// path resolves p against the config's folder.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Broker.base, p)
}
