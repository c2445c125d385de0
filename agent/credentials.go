package agent

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

	"velo/masking/relay"
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

// credential is what the gateway keeps of an operator's password.
type credential struct {
	verify, command   []byte
	ha1MD5, ha1SHA256 string
	site, operator    string
	plaintext         bool
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

func deriveCredential(site, operator, password string) credential {
	k := accessKey(site, operator, password)
	sp := StreamPassword(site, operator, password)
	md := md5.Sum([]byte(operator + ":" + RTSPRealm + ":" + sp))
	sh := sha256.Sum256([]byte(operator + ":" + RTSPRealm + ":" + sp))
	return credential{verify: mac(k, "verify"), command: mac(k, "command"), ha1MD5: hex.EncodeToString(md[:]), ha1SHA256: hex.EncodeToString(sh[:]),
		site: site, operator: operator}
}

// HashCredential is the credential file line for an operator's password.
func HashCredential(site, operator, password string) string {
	c := deriveCredential(site, operator, password)
	return credPrefix + strings.Join([]string{site, operator, hex.EncodeToString(c.verify), hex.EncodeToString(c.command), c.ha1MD5, c.ha1SHA256}, "$")
}

// isHashed reports whether a password file's first line is a credential.
func isHashed(line string) bool { return strings.HasPrefix(line, credPrefix) }

// parseCredential reads a credential line made for site and operator.
func parseCredential(line, site, operator string) (credential, error) {
	f := strings.Split(strings.TrimPrefix(line, credPrefix), "$")
	if len(f) != 6 {
		return credential{}, fmt.Errorf("malformed credential (want 6 fields after %s, got %d): rewrite it with velo passwd", credPrefix, len(f))
	}
	if f[0] != site || f[1] != operator {
		return credential{}, fmt.Errorf("credential made for site %q operator %q, not site %q operator %q: rewrite it with velo passwd", f[0], f[1], site, operator)
	}
	c := credential{site: site, operator: operator}
	var err error
	for i, dst := range []*[]byte{&c.verify, &c.command} {
		if *dst, err = hex.DecodeString(f[2+i]); err != nil || len(*dst) != 32 {
			return credential{}, fmt.Errorf("malformed credential field %d: rewrite it with velo passwd", 3+i)
		}
	}
	for i, n := range []int{32, 64} {
		if _, err := hex.DecodeString(f[4+i]); err != nil || len(f[4+i]) != n {
			return credential{}, fmt.Errorf("malformed credential field %d: rewrite it with velo passwd", 5+i)
		}
	}
	c.ha1MD5, c.ha1SHA256 = f[4], f[5]
	return c, nil
}

// lazyCred holds an operator's credential: parsed at load from a hashed
// file, or derived on first use from a plaintext one (a slow hash per
// operator would make every config load slow).
type lazyCred struct {
	once     sync.Once
	c        credential
	password string // plaintext file only, until derived
}

func (l *lazyCred) get() credential {
	l.once.Do(func() {
		if l.c.plaintext {
			l.c = deriveCredential(l.c.site, l.c.operator, l.password)
			l.c.plaintext = true
			l.password = ""
		}
	})
	return l.c
}

// checkPassword reports whether password is op's (constant time on the
// derived verifier).
func (op *OperatorConfig) checkPassword(password string) bool {
	if op.cred == nil || password == "" {
		return false
	}
	c := op.cred.get()
	k := accessKey(c.site, c.operator, password)
	return subtle.ConstantTimeCompare(mac(k, "verify"), c.verify) == 1
}

// streamSecret is what the relay checks an operator's RTSP digest with.
func (op *OperatorConfig) streamSecret() relay.Secret {
	c := op.cred.get()
	return relay.Secret{HA1MD5: c.ha1MD5, HA1SHA256: c.ha1SHA256}
}

// commandKey keys op's command MACs.
func (op *OperatorConfig) commandKey() []byte { return op.cred.get().command }
