package access

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// Operator credentials (G-3.3.1 a, G-3.3.2, ER-4.3: each operator with
// their own credentials; stored with a slow hash).
//
// From an operator's password P the access key
//
//	K = PBKDF2-HMAC-SHA256(P, "velo-operator-v1\x00" + site id + "\x00" + operator, KDFIterations, 32)
//
// is derived (slow on purpose). Everything the gateway checks comes from K:
//
//   - the verifier HMAC(K, "verify") authenticates the CLI;
//   - the command key HMAC(K, "command") keys the MAC of signed commands
//     (the sender derives it from P the same way);
//   - the stream password, hex(HMAC(K, "rtsp"))[:24], is what the operator
//     gives an RTSP player; the gateway keeps only its digest HA1s for
//     realm RTSPRealm (RTSP digest cannot work from a slow hash, so the
//     player gets a derived high-entropy password instead of P).
//
// `velo passwd` writes the credential file: one line
// "$velo1$<site>$<operator>$<verifier>$<command key>$<HA1 MD5>$<HA1 SHA-256>".
// Guessing P from it costs KDFIterations PBKDF2 rounds per guess, and the
// file is useless on another site or for another operator. A password
// file in plaintext still works (it is hashed when loaded) but config
// check warns about it.
const (
	KDFIterations = 600_000
	RTSPRealm     = "velo"
	credPrefix    = "$velo1$"
)

// derived is what the gateway keeps of an operator's password.
type derived struct {
	verify, command   []byte
	ha1MD5, ha1SHA256 string
	site, operator    string
}

var keyCache sync.Map // sha256(site, operator, password) -> K

// accessKey derives K (cached per process: a CLI or a test signs many
// commands with one password).
func accessKey(site, operator, password string) []byte {
	id := sha256.Sum256([]byte(site + "\x00" + operator + "\x00" + password))
	if k, ok := keyCache.Load(id); ok {
		return k.([]byte)
	}
	k, err := pbkdf2.Key(sha256.New, password, []byte("velo-operator-v1\x00"+site+"\x00"+operator), KDFIterations, 32)
	if err != nil {
		panic(err) // only for FIPS-mode parameter errors, which these are not
	}
	keyCache.Store(id, k)
	return k
}

func mac(key []byte, what string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(what))
	return m.Sum(nil)
}

// StreamPassword is the RTSP password of an operator (for a player).
func StreamPassword(site, operator, password string) string {
	return hex.EncodeToString(mac(accessKey(site, operator, password), "rtsp"))[:24]
}

// CommandKey is the key of an operator's command MACs.
func CommandKey(site, operator, password string) []byte {
	return mac(accessKey(site, operator, password), "command")
}

func derive(site, operator, password string) derived {
	k := accessKey(site, operator, password)
	sp := StreamPassword(site, operator, password)
	md := md5.Sum([]byte(operator + ":" + RTSPRealm + ":" + sp))
	sh := sha256.Sum256([]byte(operator + ":" + RTSPRealm + ":" + sp))
	return derived{verify: mac(k, "verify"), command: mac(k, "command"), ha1MD5: hex.EncodeToString(md[:]), ha1SHA256: hex.EncodeToString(sh[:]),
		site: site, operator: operator}
}

// HashCredential is the credential file line for an operator's password.
func HashCredential(site, operator, password string) string {
	c := derive(site, operator, password)
	return credPrefix + strings.Join([]string{site, operator, hex.EncodeToString(c.verify), hex.EncodeToString(c.command), c.ha1MD5, c.ha1SHA256}, "$")
}

// IsHashed reports whether a password file's first line is a credential
// line (as velo passwd writes it) rather than a plaintext password.
func IsHashed(line string) bool { return strings.HasPrefix(line, credPrefix) }

// Credential is what the gateway keeps of one operator's password: parsed
// from a credential line, or derived on first use from a plaintext
// password (a slow hash per operator would make every config load slow).
// Safe for concurrent use. Its String never shows a secret.
type Credential struct {
	once      sync.Once
	d         derived
	password  string // plaintext file only, until derived
	plaintext bool
}

// ParseCredential reads a credential line made for site and operator.
func ParseCredential(line, site, operator string) (*Credential, error) {
	f := strings.Split(strings.TrimPrefix(line, credPrefix), "$")
	if len(f) != 6 {
		return nil, fmt.Errorf("malformed credential (want 6 fields after %s, got %d): rewrite it with velo passwd", credPrefix, len(f))
	}
	if f[0] != site || f[1] != operator {
		return nil, fmt.Errorf("credential made for site %q operator %q, not site %q operator %q: rewrite it with velo passwd", f[0], f[1], site, operator)
	}
	d := derived{site: site, operator: operator}
	var err error
	for i, dst := range []*[]byte{&d.verify, &d.command} {
		if *dst, err = hex.DecodeString(f[2+i]); err != nil || len(*dst) != 32 {
			return nil, fmt.Errorf("malformed credential field %d: rewrite it with velo passwd", 3+i)
		}
	}
	for i, n := range []int{32, 64} {
		if _, err := hex.DecodeString(f[4+i]); err != nil || len(f[4+i]) != n {
			return nil, fmt.Errorf("malformed credential field %d: rewrite it with velo passwd", 5+i)
		}
	}
	d.ha1MD5, d.ha1SHA256 = f[4], f[5]
	c := &Credential{d: d}
	c.once.Do(func() {})
	return c, nil
}

// PlaintextCredential keeps a plaintext password until first use, when it
// is derived like a credential line and forgotten.
func PlaintextCredential(password, site, operator string) *Credential {
	return &Credential{d: derived{site: site, operator: operator}, password: password, plaintext: true}
}

func (c *Credential) get() derived {
	c.once.Do(func() {
		c.d = derive(c.d.site, c.d.operator, c.password)
		c.password = ""
	})
	return c.d
}

// String hides the secrets.
func (c *Credential) String() string { return "(credential)" }

// CheckPassword reports whether password is the operator's (through the
// slow derivation, constant-time compare on the verifier).
func (c *Credential) CheckPassword(password string) bool {
	if c == nil || password == "" {
		return false
	}
	d := c.get()
	k := accessKey(d.site, d.operator, password)
	return subtle.ConstantTimeCompare(mac(k, "verify"), d.verify) == 1
}

// StreamHA1 are the RTSP digest HA1s (MD5 and SHA-256, realm RTSPRealm) of
// the operator's stream password: what the relay checks a reader with.
func (c *Credential) StreamHA1() (md5Hex, sha256Hex string) {
	d := c.get()
	return d.ha1MD5, d.ha1SHA256
}

// CommandKey keys the operator's command MACs.
func (c *Credential) CommandKey() []byte { return c.get().command }
