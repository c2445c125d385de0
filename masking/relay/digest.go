package relay

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// maxNonces bounds the nonces one connection holds (the oldest goes).
// Nonces are issued per connection and answer only there: a login
// sniffed on one connection is no use on another.
const maxNonces = 8

// digestAuth is an Authorization: Digest header, with the RFC 2617 qop
// fields that gortsplib's parser drops.
type digestAuth struct {
	username, realm, nonce, uri, response string
	algorithm                             string // "", MD5 or SHA-256
	qop, nc, cnonce                       string
}

var errNotDigest = errors.New("not a digest answer")

// parseDigest decodes an Authorization header; anything but one
// well-formed Digest answer is errNotDigest.
func parseDigest(v base.HeaderValue) (digestAuth, error) {
	var a digestAuth
	if len(v) != 1 || !strings.HasPrefix(v[0], "Digest ") {
		return a, errNotDigest
	}
	kv, err := splitParams(strings.TrimPrefix(v[0], "Digest "))
	if err != nil {
		return a, err
	}
	a = digestAuth{username: kv["username"], realm: kv["realm"], nonce: kv["nonce"], uri: kv["uri"],
		response: kv["response"], algorithm: kv["algorithm"], qop: kv["qop"], nc: kv["nc"], cnonce: kv["cnonce"]}
	if a.username == "" || a.nonce == "" || a.uri == "" || a.response == "" {
		return a, errNotDigest
	}
	return a, nil
}

// splitParams splits `k="v", k=v` pairs (keys lower-cased).
func splitParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), ",")) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errNotDigest
		}
		k, rest = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(rest)
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, errNotDigest
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			v, s = strings.TrimSpace(rest[:end]), rest[end:]
		}
		if _, dup := out[k]; dup {
			return nil, errNotDigest
		}
		out[k] = v
	}
	return out, nil
}

// nonceState is one issued nonce: when, and the highest nonce count
// answered with it (qop=auth).
type nonceState struct {
	issued time.Time
	nc     uint64
	qop    bool // answered with qop once: a later answer without it is a downgrade
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// challenge is the WWW-Authenticate header of a 401: one shape for every
// refusal (unknown user, wrong password, foreign nonce), so a 401 says
// nothing about which user names exist.
func challenge(realm, nonce string, stale bool) base.HeaderValue {
	v := fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm="MD5"`, realm, nonce)
	if stale {
		v += ", stale=true"
	}
	return base.HeaderValue{v}
}

// digestResponse is the expected response for a, from HA1.
func digestResponse(req *base.Request, a digestAuth, ha1 string, sha bool) string {
	h := md5Hex
	if sha {
		h = sha256Hex
	}
	ha2 := h(string(req.Method) + ":" + a.uri)
	if a.qop != "" {
		return h(ha1 + ":" + a.nonce + ":" + a.nc + ":" + a.cnonce + ":" + a.qop + ":" + ha2)
	}
	return h(ha1 + ":" + a.nonce + ":" + ha2)
}

// uriMatches: the answer is for this request's URL (in SETUP, VLC uses
// the stream's base URL, not the track's).
func uriMatches(req *base.Request, uri string) bool {
	got := req.URL.String()
	if uri == got {
		return true
	}
	m := reControl.FindStringSubmatch(got)
	return req.Method == base.Setup && m != nil && uri == m[1]
}

// validResponse checks a's response against the secret, in constant time.
// It does the same work whether or not the user exists.
func validResponse(req *base.Request, a digestAuth, sec Secret, realm string) bool {
	sha := strings.EqualFold(a.algorithm, "SHA-256")
	if a.algorithm != "" && !sha && !strings.EqualFold(a.algorithm, "MD5") {
		return false
	}
	if a.qop != "" && (a.qop != "auth" || a.cnonce == "" || len(a.nc) != 8) {
		return false
	}
	ha1 := sec.ha1(a.username, realm, sha)
	want := digestResponse(req, a, ha1, sha)
	ok := subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(a.response))) == 1
	return ok && ha1 != "" && a.realm == realm && uriMatches(req, a.uri)
}

// nonceVerdict is what a connection's nonce table says of an answer.
type nonceVerdict int

const (
	nonceOK      nonceVerdict = iota
	nonceForeign              // not issued on this connection: a replay or a forgery
	nonceStale                // issued here, expired: ask again with stale=true
	nonceReplay               // nonce count not above the last one, or a downgrade
)

// useNonce checks a (already verified) answer's nonce against the
// connection's table and records its nonce count.
func (c *guardedConn) useNonce(a digestAuth, now time.Time) nonceVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nonces[a.nonce]
	switch {
	case st == nil:
		return nonceForeign
	case now.Sub(st.issued) > c.g.limits.NonceLifetime:
		return nonceStale
	case a.qop == "":
		if st.qop {
			return nonceReplay
		}
		return nonceOK // RFC 2069 player: the nonce is bound to this connection and short-lived
	}
	nc, err := strconv.ParseUint(a.nc, 16, 32)
	if err != nil || nc <= st.nc {
		return nonceReplay
	}
	st.nc, st.qop = nc, true
	return nonceOK
}

// peekNonce is useNonce's first two checks, without recording anything:
// whether the nonce is this connection's and still fresh.
func (c *guardedConn) peekNonce(nonce string, now time.Time) nonceVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nonces[nonce]
	switch {
	case st == nil:
		return nonceForeign
	case now.Sub(st.issued) > c.g.limits.NonceLifetime:
		return nonceStale
	}
	return nonceOK
}

// issueNonce gives the connection a fresh nonce.
func (c *guardedConn) issueNonce(now time.Time) string {
	n := newNonce()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonces == nil {
		c.nonces = map[string]*nonceState{}
	}
	if len(c.nonces) >= maxNonces {
		oldest := ""
		for k, st := range c.nonces {
			if oldest == "" || st.issued.Before(c.nonces[oldest].issued) {
				oldest = k
			}
		}
		delete(c.nonces, oldest)
	}
	c.nonces[n] = &nonceState{issued: now}
	return n
}
