package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"velo/agent/access"
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
// credentials. A file readable by group or others is refused.
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
	for i := range c.Operators {
		if err := c.readOperatorCredential(i); err != nil {
			return err
		}
	}
	return nil
}

// readSecretFile returns the first line of a secret file.
func (c *Config) readSecretFile(field, p string) (Secret, error) {
	p = c.path(p)
	st, err := os.Stat(p)
	if err != nil {
		return "", c.fieldError(field, "%v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", c.fieldError(field, "%s is readable by group or others (mode %v); chmod 600", p, st.Mode().Perm())
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", c.fieldError(field, "%v", err)
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	if pw = strings.TrimRight(pw, "\r"); pw == "" {
		return "", c.fieldError(field, "%s: empty first line", p)
	}
	return Secret(pw), nil
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
		if _, err := os.Stat(c.path(f.path)); err != nil {
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
