package onvif

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
)

// digestChallenge is one parsed WWW-Authenticate: Digest challenge. Qop is
// the quality of protection the answer uses: "auth", "auth-int" (the
// response also covers the body's hash), or "" for a challenge without qop
// (RFC 2069).
type digestChallenge struct {
	Realm, Nonce, Opaque, Algorithm string
	Qop                             string
}

type digestState struct {
	ch digestChallenge
	nc uint32
}

// errDigestQop is the refusal of a Digest challenge whose qop list names
// nothing we can answer: answering without a qop would be a different
// (weaker) protocol than the camera asked for.
var errDigestQop = errors.New("Digest challenge with no qop we support (auth, auth-int)")

// parseDigestChallenge picks the strongest Digest challenge offered
// (SHA-256 over MD5) from the WWW-Authenticate header values. err is set
// when Digest was offered but only with a qop we cannot answer.
func parseDigestChallenge(values []string) (digestChallenge, bool, error) {
	var best digestChallenge
	found, badQop := false, false
	for _, ch := range ParseChallenges(values) {
		if !strings.EqualFold(ch.Scheme, "Digest") {
			continue
		}
		d := digestChallenge{
			Realm:     ch.Params["realm"],
			Nonce:     ch.Params["nonce"],
			Opaque:    ch.Params["opaque"],
			Algorithm: strings.ToUpper(ch.Params["algorithm"]),
		}
		if d.Algorithm == "" {
			d.Algorithm = "MD5"
		}
		if d.Algorithm != "MD5" && d.Algorithm != "SHA-256" {
			continue // -sess variants and others: unsupported
		}
		if d.Nonce == "" {
			continue
		}
		q, ok := pickQop(ch.Params)
		if !ok {
			badQop = true
			continue
		}
		d.Qop = q
		if !found || (d.Algorithm == "SHA-256" && best.Algorithm != "SHA-256") {
			best, found = d, true
		}
	}
	if !found && badQop {
		return best, false, errDigestQop
	}
	return best, found, nil
}

// pickQop chooses "auth" over "auth-int" from a challenge's qop list (auth
// is what every camera checks; auth-int only when it is all that is
// offered). No qop parameter is RFC 2069: "" and ok.
func pickQop(params map[string]string) (string, bool) {
	list, present := params["qop"]
	if !present {
		return "", true
	}
	var authInt bool
	for _, q := range strings.Split(list, ",") {
		switch strings.TrimSpace(q) {
		case "auth":
			return "auth", true
		case "auth-int":
			authInt = true
		}
	}
	if authInt {
		return "auth-int", true
	}
	return "", false
}

// Challenge is one challenge of a WWW-Authenticate header (HTTP or RTSP):
// its scheme as sent and its parameters, keys in lower case.
type Challenge struct {
	Scheme string
	Params map[string]string
}

// ParseChallenges parses every challenge in the WWW-Authenticate values.
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		out = append(out, splitChallenges(v)...)
	}
	return out
}

// splitChallenges parses `Digest realm="a", nonce="b", Basic realm="c"`.
func splitChallenges(h string) []Challenge {
	var out []Challenge
	var cur *Challenge
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
			cur.Params[strings.ToLower(tok)] = val
			s = rest
			continue
		}
		out = append(out, Challenge{Scheme: tok, Params: map[string]string{}})
		cur = &out[len(out)-1]
		s = rest
	}
	return out
}

// digestAuthorization returns the Authorization header for a POST of body
// to addr if a challenge is known, else "".
func (c *Client) digestAuthorization(addr string, body []byte) string {
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
	return digestResponse(c.digest.ch, c.digest.nc, c.cfg.Username, c.cfg.Password, "POST", uri, body, randomHex(8))
}

// digestResponse answers ch (RFC 7616; RFC 2069 when ch has no qop).
func digestResponse(ch digestChallenge, nc uint32, user, pass, method, uri string, body []byte, cnonce string) string {
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
	if ch.Qop == "auth-int" {
		ha2 = sum(method + ":" + uri + ":" + sum(string(body)))
	}
	ncs := fmt.Sprintf("%08x", nc)
	var resp string
	if ch.Qop != "" {
		resp = sum(ha1 + ":" + ch.Nonce + ":" + ncs + ":" + cnonce + ":" + ch.Qop + ":" + ha2)
	} else {
		resp = sum(ha1 + ":" + ch.Nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=%s, response=%q`,
		user, ch.Realm, ch.Nonce, uri, ch.Algorithm, resp)
	if ch.Qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce=%q`, ch.Qop, ncs, cnonce)
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
