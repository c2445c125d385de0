package onvif

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"net/url"
	"strings"
)

// digestChallenge is one parsed WWW-Authenticate: Digest challenge.
type digestChallenge struct {
	Realm, Nonce, Opaque, Algorithm string
	QopAuth                         bool
}

type digestState struct {
	ch digestChallenge
	nc uint32
}

// parseDigestChallenge picks the strongest Digest challenge offered
// (SHA-256 over MD5) from the WWW-Authenticate header values.
func parseDigestChallenge(values []string) (digestChallenge, bool) {
	var best digestChallenge
	found := false
	for _, v := range values {
		for _, ch := range splitChallenges(v) {
			if !strings.EqualFold(ch.scheme, "Digest") {
				continue
			}
			d := digestChallenge{
				Realm:     ch.params["realm"],
				Nonce:     ch.params["nonce"],
				Opaque:    ch.params["opaque"],
				Algorithm: strings.ToUpper(ch.params["algorithm"]),
			}
			if d.Algorithm == "" {
				d.Algorithm = "MD5"
			}
			if d.Algorithm != "MD5" && d.Algorithm != "SHA-256" {
				continue // -sess variants and others: unsupported
			}
			for _, q := range strings.Split(ch.params["qop"], ",") {
				if strings.TrimSpace(q) == "auth" {
					d.QopAuth = true
				}
			}
			if d.Nonce == "" {
				continue
			}
			if !found || (d.Algorithm == "SHA-256" && best.Algorithm != "SHA-256") {
				best, found = d, true
			}
		}
	}
	return best, found
}

type authChallenge struct {
	scheme string
	params map[string]string
}

// splitChallenges parses `Digest realm="a", nonce="b", Basic realm="c"`.
func splitChallenges(h string) []authChallenge {
	var out []authChallenge
	var cur *authChallenge
	s := h
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		// token
		i := 0
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '=' && s[i] != ',' {
			i++
		}
		tok := s[:i]
		s = s[i:]
		rest := strings.TrimLeft(s, " \t")
		if strings.HasPrefix(rest, "=") && cur != nil {
			rest = strings.TrimLeft(rest[1:], " \t")
			var val string
			if strings.HasPrefix(rest, `"`) {
				var b strings.Builder
				j := 1
				for ; j < len(rest); j++ {
					if rest[j] == '\\' && j+1 < len(rest) {
						j++
						b.WriteByte(rest[j])
						continue
					}
					if rest[j] == '"' {
						break
					}
					b.WriteByte(rest[j])
				}
				val = b.String()
				if j < len(rest) {
					j++
				}
				rest = rest[j:]
			} else {
				j := strings.IndexAny(rest, ", \t")
				if j < 0 {
					j = len(rest)
				}
				val = rest[:j]
				rest = rest[j:]
			}
			cur.params[strings.ToLower(tok)] = val
			s = rest
			continue
		}
		out = append(out, authChallenge{scheme: tok, params: map[string]string{}})
		cur = &out[len(out)-1]
		s = rest
	}
	return out
}

// digestAuthorization returns the Authorization header for a request to addr
// if a challenge is known, else "".
func (c *Client) digestAuthorization(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.digest == nil || !c.creds {
		return ""
	}
	c.digest.nc++
	u, err := url.Parse(addr)
	if err != nil {
		return ""
	}
	uri := u.RequestURI() // exact request-URI, incl. query (Hikvision checks it)
	return digestResponse(c.digest.ch, c.digest.nc, c.cfg.Username, c.cfg.Password, "POST", uri, randomHex(8))
}

func digestResponse(ch digestChallenge, nc uint32, user, pass, method, uri, cnonce string) string {
	var h func() hash.Hash = md5.New
	if ch.Algorithm == "SHA-256" {
		h = sha256.New
	}
	sum := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := sum(user + ":" + ch.Realm + ":" + pass)
	ha2 := sum(method + ":" + uri)
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if ch.QopAuth {
		resp = sum(ha1 + ":" + ch.Nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
	} else {
		resp = sum(ha1 + ":" + ch.Nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=%s, response=%q`,
		user, ch.Realm, ch.Nonce, uri, ch.Algorithm, resp)
	if ch.QopAuth {
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce=%q`, ncs, cnonce)
	}
	if ch.Opaque != "" {
		fmt.Fprintf(&b, `, opaque=%q`, ch.Opaque)
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

func escapeText(b *bytes.Buffer, s string) error {
	return xml.EscapeText(b, []byte(s))
}
