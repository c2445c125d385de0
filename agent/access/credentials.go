package access

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Operator credentials (G-3.3.1 a, G-3.3.2, ER-4.3: each operator with
// their own credentials; stored with a slow hash).
//
// From an operator's password P the access key
//
//	K = PBKDF2-HMAC-SHA256(P, "velo-operator-v1\x00" + site id + "\x00" + operator, KDFIterations, 32)
//
// is derived (slow on purpose). Everything else comes from K:
//
//   - the verifier HMAC(K, "verify") authenticates the CLI;
//   - signed commands use Ed25519 with the seed HMAC(K, "ed25519-command"):
//     the sender derives the private key from P, the gateway keeps only
//     the public key, so nothing stored on the gateway can sign a command;
//   - the stream password of generation g, hex(HMAC(K, "rtsp\x00" + g))[:24],
//     is what the operator gives an RTSP player. RTSP digest can only be
//     checked against HA1 = H(user:realm:password), which is as good as
//     the password for reading streams, so the gateway keeps the HA1s of
//     a derived high-entropy password instead of P, with an expiry date;
//     `velo passwd --rotate-stream` moves to generation g+1, which the
//     HA1s of g do not reveal.
//
// `velo passwd` writes the credential file: one line
// "$velo2$<site>$<operator>$<verifier>$<command public key>$<stream generation>$<stream expiry>$<HA1 MD5>$<HA1 SHA-256>".
// Reading it lets an attacker guess P at KDFIterations PBKDF2 rounds per
// guess, and read live streams with the HA1s until they expire or rotate;
// nothing else. It is useless on another site or for another operator.
//
// Two older forms still load, for the CLI and live view only, with a
// warning (agent/config): a "$velo1$" line (it kept a command MAC key,
// which let anyone who read it sign commands) and a plaintext password.
// Neither can verify a command, and their stream password is generation
// 0, hex(HMAC(K, "rtsp"))[:24], which never expires.
const (
	KDFIterations = 600_000
	RTSPRealm     = "velo"
	// LegacyStreamGeneration is the stream password of a plaintext
	// password file or a $velo1$ line.
	LegacyStreamGeneration = 0
	credPrefix             = "$velo2$"
	legacyPrefix           = "$velo1$"
	maxGeneration          = 1_000_000_000
)

// ErrStreamExpired is a stream password past its expiry.
var ErrStreamExpired = errors.New("stream password expired")

// derived is what the gateway keeps of an operator's password.
type derived struct {
	verify            []byte
	commandKey        ed25519.PublicKey // nil: this form verifies no command
	generation        int
	expires           time.Time // zero: never (the older forms)
	ha1MD5, ha1SHA256 string
	site, operator    string
}

// keyCache keeps the last keys derived in this process (a CLI or a test
// signs many commands with one password). Bounded: a running agent checks
// whatever passwords its clients send, and must not keep them all.
var keyCache struct {
	sync.Mutex
	m map[[32]byte][]byte
}

var keyCacheMax = 32 // a var for the test

// accessKey derives K (cached, see keyCache).
func accessKey(site, operator, password string) []byte {
	id := sha256.Sum256([]byte(site + "\x00" + operator + "\x00" + password))
	keyCache.Lock()
	k, ok := keyCache.m[id]
	keyCache.Unlock()
	if ok {
		return k
	}
	k = deriveKey(site, operator, password)
	keyCache.Lock()
	if keyCache.m == nil || len(keyCache.m) >= keyCacheMax {
		keyCache.m = map[[32]byte][]byte{} // start again: bounded, and the common case is one password
	}
	keyCache.m[id] = k
	keyCache.Unlock()
	return k
}

func deriveKey(site, operator, password string) []byte {
	k, err := pbkdf2.Key(sha256.New, password, []byte("velo-operator-v1\x00"+site+"\x00"+operator), KDFIterations, 32)
	if err != nil {
		panic(err) // only for FIPS-mode parameter errors, which these are not
	}
	return k
}

// SpendCheck takes as long as checking password for a known operator and
// keeps nothing: a login naming an unknown operator is answered no faster
// than one naming a known operator, so names cannot be found by timing.
func SpendCheck(site, operator, password string) {
	if password != "" {
		_ = deriveKey(site, operator, password)
	}
}

func mac(key []byte, what string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(what))
	return m.Sum(nil)
}

func streamPassword(k []byte, generation int) string {
	label := "rtsp"
	if generation != LegacyStreamGeneration {
		label += "\x00" + strconv.Itoa(generation)
	}
	return hex.EncodeToString(mac(k, label))[:24]
}

// StreamPassword is an operator's RTSP password of a generation (for a
// player): the generation in their credential line, or
// LegacyStreamGeneration for a plaintext file or a $velo1$ line.
func StreamPassword(site, operator, password string, generation int) string {
	return streamPassword(accessKey(site, operator, password), generation)
}

// CommandPrivateKey is the key an operator signs commands with, derived
// from their password; the gateway holds only its public half.
func CommandPrivateKey(site, operator, password string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(mac(accessKey(site, operator, password), "ed25519-command"))
}

func streamHA1s(operator, streamPassword string) (md5Hex, sha256Hex string) {
	md := md5.Sum([]byte(operator + ":" + RTSPRealm + ":" + streamPassword))
	sh := sha256.Sum256([]byte(operator + ":" + RTSPRealm + ":" + streamPassword))
	return hex.EncodeToString(md[:]), hex.EncodeToString(sh[:])
}

// HashCredential is the credential line for an operator's password, with
// stream password generation (at least 1) valid until expires.
func HashCredential(site, operator, password string, generation int, expires time.Time) string {
	k := accessKey(site, operator, password)
	md, sh := streamHA1s(operator, streamPassword(k, generation))
	pub := CommandPrivateKey(site, operator, password).Public().(ed25519.PublicKey)
	return credPrefix + strings.Join([]string{site, operator, hex.EncodeToString(mac(k, "verify")), hex.EncodeToString(pub),
		strconv.Itoa(generation), expires.UTC().Truncate(time.Second).Format(time.RFC3339), md, sh}, "$")
}

// IsHashed reports whether a password file's first line is a credential
// line (either form velo passwd has written) rather than a plaintext
// password.
func IsHashed(line string) bool {
	return strings.HasPrefix(line, credPrefix) || strings.HasPrefix(line, legacyPrefix)
}

// Credential is what the gateway keeps of one operator's password: parsed
// from a credential line, or derived on first use from a plaintext
// password (a slow hash per operator would make every config load slow).
// Safe for concurrent use. Its String never shows a secret.
type Credential struct {
	once     sync.Once
	d        derived
	password string // plaintext file only, until derived
}

// ParseCredential reads a credential line made for site and operator.
func ParseCredential(line, site, operator string) (*Credential, error) {
	var d derived
	var err error
	if strings.HasPrefix(line, legacyPrefix) {
		d, err = parseLegacyLine(strings.Split(strings.TrimPrefix(line, legacyPrefix), "$"))
	} else {
		d, err = parseLine(strings.Split(strings.TrimPrefix(line, credPrefix), "$"))
	}
	if err != nil {
		return nil, err
	}
	if d.site != site || d.operator != operator {
		return nil, fmt.Errorf("credential made for site %q operator %q, not site %q operator %q: rewrite it with velo passwd", d.site, d.operator, site, operator)
	}
	c := &Credential{d: d}
	c.once.Do(func() {})
	return c, nil
}

func malformed(field int) error {
	return fmt.Errorf("malformed credential field %d: rewrite it with velo passwd", field)
}

// hexField checks field i (0-based after the prefix) is n hex digits.
func hexField(f []string, i, n int) error {
	if _, err := hex.DecodeString(f[i]); err != nil || len(f[i]) != n {
		return malformed(i + 1)
	}
	return nil
}

// parseLine reads the fields of a $velo2$ line.
func parseLine(f []string) (derived, error) {
	if len(f) != 8 {
		return derived{}, fmt.Errorf("malformed credential (want 8 fields after %s, got %d): rewrite it with velo passwd", credPrefix, len(f))
	}
	for i, n := range map[int]int{2: 64, 3: 64, 6: 32, 7: 64} {
		if err := hexField(f, i, n); err != nil {
			return derived{}, err
		}
	}
	gen, err := strconv.Atoi(f[4])
	if err != nil || gen < 1 || gen > maxGeneration || f[4] != strconv.Itoa(gen) {
		return derived{}, fmt.Errorf("malformed credential: stream generation %q is not a number from 1: rewrite it with velo passwd", f[4])
	}
	expires, err := time.Parse(time.RFC3339, f[5])
	if err != nil {
		return derived{}, fmt.Errorf("malformed credential: stream expiry %q is not an RFC 3339 time: rewrite it with velo passwd", f[5])
	}
	verify, _ := hex.DecodeString(f[2])
	pub, _ := hex.DecodeString(f[3])
	return derived{site: f[0], operator: f[1], verify: verify, commandKey: pub, generation: gen, expires: expires,
		ha1MD5: f[6], ha1SHA256: f[7]}, nil
}

// parseLegacyLine reads the fields of a $velo1$ line; its command key is
// checked for form and dropped.
func parseLegacyLine(f []string) (derived, error) {
	if len(f) != 6 {
		return derived{}, fmt.Errorf("malformed credential (want 6 fields after %s, got %d): rewrite it with velo passwd", legacyPrefix, len(f))
	}
	for i, n := range map[int]int{2: 64, 3: 64, 4: 32, 5: 64} {
		if err := hexField(f, i, n); err != nil {
			return derived{}, err
		}
	}
	verify, _ := hex.DecodeString(f[2])
	return derived{site: f[0], operator: f[1], verify: verify, generation: LegacyStreamGeneration, ha1MD5: f[4], ha1SHA256: f[5]}, nil
}

// PlaintextCredential keeps a plaintext password until first use, when it
// is derived like a credential line and forgotten.
func PlaintextCredential(password, site, operator string) *Credential {
	return &Credential{d: derived{site: site, operator: operator}, password: password}
}

func (c *Credential) get() derived {
	c.once.Do(func() {
		k := accessKey(c.d.site, c.d.operator, c.password)
		c.d.verify = mac(k, "verify")
		c.d.generation = LegacyStreamGeneration
		c.d.ha1MD5, c.d.ha1SHA256 = streamHA1s(c.d.operator, streamPassword(k, LegacyStreamGeneration))
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
// the operator's stream password, what the relay checks a reader with;
// an error wrapping ErrStreamExpired once it has expired at now.
func (c *Credential) StreamHA1(now time.Time) (md5Hex, sha256Hex string, err error) {
	d := c.get()
	if !d.expires.IsZero() && !now.Before(d.expires) {
		return "", "", fmt.Errorf("%w: generation %d expired at %s: rotate it with velo passwd --rotate-stream",
			ErrStreamExpired, d.generation, d.expires.UTC().Format(time.RFC3339))
	}
	return d.ha1MD5, d.ha1SHA256, nil
}

// Stream is the generation of the operator's stream password and when it
// expires (zero: never, for the older forms).
func (c *Credential) Stream() (generation int, expires time.Time) {
	d := c.get()
	return d.generation, d.expires
}

// CommandPublicKey verifies the operator's signed commands; nil when the
// credential is a plaintext password or a $velo1$ line, which verify no
// command.
func (c *Credential) CommandPublicKey() ed25519.PublicKey {
	if c == nil {
		return nil
	}
	return c.get().commandKey
}
