package camsim

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"
)

const realm = "camsim"

// challenge answers 401 with one Digest challenge per configured algorithm.
func (c *Camera) challenge(w http.ResponseWriter, stale bool) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	nonce := hex.EncodeToString(b)
	c.mu.Lock()
	for n, t := range c.dnonces {
		if time.Since(t) > 5*time.Minute {
			delete(c.dnonces, n)
		}
	}
	c.dnonces[nonce] = time.Now()
	c.mu.Unlock()
	for _, alg := range c.cfg.DigestAlgorithms {
		v := fmt.Sprintf(`Digest realm="%s", qop="auth", algorithm=%s, nonce="%s", opaque="5ccc069c403ebaf9f0171e9517f40e41"`, realm, alg, nonce)
		if stale {
			v += `, stale=TRUE`
		}
		w.Header().Add("WWW-Authenticate", v)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized\n"))
}

// checkDigest verifies an Authorization: Digest header (RFC 7616, qop=auth).
func (c *Camera) checkDigest(h string, r *http.Request) bool {
	if !strings.HasPrefix(h, "Digest ") {
		return false
	}
	p := parseParams(h[len("Digest "):])
	alg := p["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	offered := false
	for _, a := range c.cfg.DigestAlgorithms {
		if strings.EqualFold(a, alg) {
			offered = true
		}
	}
	if !offered || p["username"] != c.cfg.Username || p["realm"] != realm {
		return false
	}
	// The uri must be exactly the request-URI (Hikvision checks this).
	if p["uri"] != r.URL.RequestURI() {
		return false
	}
	c.mu.Lock()
	_, known := c.dnonces[p["nonce"]]
	c.mu.Unlock()
	if !known {
		return false
	}
	var hf func() hash.Hash = md5.New
	if strings.EqualFold(alg, "SHA-256") {
		hf = sha256.New
	}
	sum := func(s string) string {
		x := hf()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := sum(c.cfg.Username + ":" + realm + ":" + c.cfg.Password)
	ha2 := sum(r.Method + ":" + p["uri"])
	var want string
	if p["qop"] == "auth" {
		want = sum(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	} else {
		want = sum(ha1 + ":" + p["nonce"] + ":" + ha2)
	}
	return want == p["response"]
}

func parseParams(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ,\t")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[1:end+1], s[end+2:]
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				v, s = s, ""
			} else {
				v, s = s[:end], s[end:]
			}
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
