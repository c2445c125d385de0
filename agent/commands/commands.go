// Package commands is the signed MQTT command channel: the Command and
// Reply payloads, their Ed25519 signature (the operator's key is derived
// from their password; the gateway holds only the public key),
// the one verb table (verb → action checked against the roles, the camera
// it acts on, what it executes), and the Handler that authenticates,
// authorises, de-duplicates and executes a command at most once.
package commands

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"velo/agent/access"
	"velo/agent/config"
)

// Command is the payload of velo/<site>/<gateway>/cmd/<verb>. The operator
// proves who they are with Signature, an Ed25519 signature by the key
// derived from their password (access.CommandPrivateKey) over the site,
// gateway, verb, request id, operator, both times and the args exactly as
// sent (see SignedBytes), so a command cannot be moved to another gateway,
// verb or time, no secret travels over MQTT, and the gateway, holding only
// the public key, cannot sign one itself.
type Command struct {
	RequestID string          `json:"request_id"`
	Operator  string          `json:"operator"`
	Gateway   string          `json:"gateway"`
	IssuedAt  string          `json:"issued_at"`  // RFC 3339
	ExpiresAt string          `json:"expires_at"` // RFC 3339, at most 10 min after issued_at
	Args      json.RawMessage `json:"args,omitempty"`
	Signature string          `json:"signature"` // hex
}

// Reply is published on cmd/<verb>/reply.
type Reply struct {
	RequestID string `json:"request_id"`
	Verb      string `json:"verb"`
	Operator  string `json:"operator,omitempty"`
	// Status: ok, failed (executed, did not succeed), refused (not
	// executed), duplicate (already executed: not executed again).
	Status string          `json:"status"`
	Reason string          `json:"reason,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Command limits.
const (
	MaxCommandBytes  = 16 << 10
	MaxCommandWindow = 10 * time.Minute
	CommandClockSkew = time.Minute
)

// SignedBytes is what a command's signature covers.
func SignedBytes(site, verb string, c Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "velo-cmd-v2\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", site, c.Gateway, verb, c.RequestID, c.Operator, c.IssuedAt, c.ExpiresAt)
	b.Write(c.Args)
	return b.Bytes()
}

// Sign fills c.Signature with the key derived from the operator's
// (c.Operator's) password.
func Sign(password, site, verb string, c *Command) {
	key := access.CommandPrivateKey(site, c.Operator, password)
	c.Signature = hex.EncodeToString(ed25519.Sign(key, SignedBytes(site, verb, *c)))
}

// errRefused is a command not executed, with the reason told to the sender.
type errRefused struct{ reason string }

func (e errRefused) Error() string { return e.reason }

func refuse(format string, args ...any) error { return errRefused{fmt.Sprintf(format, args...)} }

// Check authenticates and authorises a command (no side effects): the
// operator it comes from, or a refusal saying why.
func Check(cfg *config.Config, verb string, c *Command, now time.Time) (*config.OperatorConfig, error) {
	v, ok := verbs[verb]
	if !ok {
		return nil, refuse("unknown verb %q", verb)
	}
	if c.RequestID == "" || len(c.RequestID) > 128 {
		return nil, refuse("request_id missing or longer than 128")
	}
	for _, f := range []string{c.RequestID, c.Operator, c.Gateway, c.IssuedAt, c.ExpiresAt} {
		if strings.Contains(f, "\n") {
			// SignedBytes separates the fields by newlines: one in a field
			// could move the bytes a signature covers to another field.
			return nil, refuse("a field holds a newline")
		}
	}
	op := cfg.Operator(c.Operator)
	if op == nil || op.Credential() == nil {
		return nil, refuse("authentication failed")
	}
	pub, err := op.CommandPublicKey()
	if err != nil {
		return nil, refuse("%v", err) // an older credential form: says how to fix it
	}
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, SignedBytes(cfg.Site.ID, verb, *c), sig) {
		return nil, refuse("authentication failed")
	}
	if c.Gateway != cfg.Gateway {
		return nil, refuse("command for gateway %q, this is %q", c.Gateway, cfg.Gateway)
	}
	if err := checkValidity(c, now); err != nil {
		return nil, err
	}
	if err := op.May(v.action, v.camera(c.Args)); err != nil {
		return op, refuse("%v", err)
	}
	return op, nil
}

// checkValidity refuses a command outside its validity window.
func checkValidity(c *Command, now time.Time) error {
	issued, err1 := time.Parse(time.RFC3339Nano, c.IssuedAt)
	expires, err2 := time.Parse(time.RFC3339Nano, c.ExpiresAt)
	switch {
	case err1 != nil || err2 != nil:
		return refuse("issued_at/expires_at not RFC 3339")
	case !expires.After(now):
		return refuse("expired at %s", expires.UTC().Format(time.RFC3339))
	case issued.After(now.Add(CommandClockSkew)):
		return refuse("issued in the future (%s)", issued.UTC().Format(time.RFC3339))
	case expires.Sub(issued) > MaxCommandWindow || expires.Before(issued):
		return refuse("validity %v out of 0..%v", expires.Sub(issued), MaxCommandWindow)
	}
	return nil
}

func decodeArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("args missing")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("args: %v", err)
	}
	return nil
}
