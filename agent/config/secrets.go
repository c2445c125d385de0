package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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
		if c.Cameras[i].PasswordFile == "" {
			continue
		}
		pw, err := c.readSecretFile(fmt.Sprintf("cameras[%d].password_file", i), c.Cameras[i].PasswordFile)
		if err != nil {
			return err
		}
		c.Cameras[i].Password = pw
	}
	if err := c.readBrokerFiles(); err != nil {
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

// readOperatorCredential reads operator i's credential line, or (with a
// warning naming the fix) a plaintext password.
func (c *Config) readOperatorCredential(i int) error {
	op := &c.Operators[i]
	field := fmt.Sprintf("operators[%d].password_file", i)
	pw, err := c.readSecretFile(field, op.PasswordFile)
	if err != nil {
		return err
	}
	if access.IsHashed(pw.Reveal()) {
		cr, err := access.ParseCredential(pw.Reveal(), c.Site.ID, op.Name)
		if err != nil {
			return c.fieldError(field, "%s: %v", op.PasswordFile, err)
		}
		op.cred = cr
		return nil
	}
	op.cred = access.PlaintextCredential(pw.Reveal(), c.Site.ID, op.Name)
	c.Warnings = append(c.Warnings, fmt.Sprintf("%s: operator %q: %s holds a plaintext password; store its slow hash instead: velo passwd --config %s --operator %s --password-file %s --out %s",
		field, op.Name, op.PasswordFile, c.file, op.Name, op.PasswordFile, op.PasswordFile))
	return nil
}

// path resolves p against the config's folder.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Broker.base, p)
}
