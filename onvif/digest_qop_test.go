package onvif_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"velo/onvif"
)

// digestParam matches one key=value (quoted or not) of an Authorization
// header.
var digestParam = regexp.MustCompile(`(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))`)

// qopServer is an HTTP server that answers only HTTP digest with the given
// qop list, checks each answer as RFC 7616 says (for auth-int: over the
// hash of the body), and records what the client sent.
type qopServer struct {
	qop  string
	mu   sync.Mutex
	seen []map[string]string
}

func (s *qopServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p := map[string]string{}
	authz, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Digest ")
	for _, m := range digestParam.FindAllStringSubmatch(authz, -1) {
		p[m[1]] = m[2] + m[3]
	}
	if ok {
		s.mu.Lock()
		s.seen = append(s.seen, p)
		s.mu.Unlock()
	}
	if !ok || !validDigest(p, r.Method, body) {
		w.Header().Set("WWW-Authenticate", `Digest realm="cam", nonce="n0nce", algorithm=MD5, qop="`+s.qop+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_, _ = w.Write([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>` +
		`<GetHostnameResponse><HostnameInformation><Name>cam-1</Name></HostnameInformation></GetHostnameResponse></s:Body></s:Envelope>`))
}

// validDigest checks an answer with qop auth or auth-int (user u, password p).
func validDigest(p map[string]string, method string, body []byte) bool {
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha2 := h(method + ":" + p["uri"])
	switch p["qop"] {
	case "auth":
	case "auth-int":
		b := md5.Sum(body)
		ha2 = h(method + ":" + p["uri"] + ":" + hex.EncodeToString(b[:]))
	default:
		return false
	}
	if p["cnonce"] == "" || len(p["nc"]) != 8 {
		return false
	}
	want := h(h("u:cam:p") + ":n0nce:" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + ha2)
	return p["response"] == want
}

// A camera offering only qop="auth-int" gets a correct answer: a client
// nonce, a nonce count, and the response over the hash of the body. A
// camera whose challenge names only qop values the client does not know
// is refused with a clear error, not answered as if it had no qop.
func TestDigestQop(t *testing.T) {
	for _, tc := range []struct {
		qop     string
		wantErr bool
	}{{"auth-int", false}, {"auth,auth-int", false}, {"auth-conf", true}} {
		t.Run(tc.qop, func(t *testing.T) {
			s := &qopServer{qop: tc.qop}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL + "/onvif/device_service", Username: "u", Password: "p", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			name, err := c.GetHostname(ctxT(t))
			s.mu.Lock()
			seen := s.seen
			s.mu.Unlock()
			if tc.wantErr {
				if !errors.Is(err, onvif.ErrUnauthorized) || !strings.Contains(err.Error(), "qop") {
					t.Errorf("err = %v, want ErrUnauthorized naming the qop", err)
				}
				if len(seen) != 0 {
					t.Errorf("the client answered a challenge it cannot meet: %v", seen)
				}
				return
			}
			if err != nil || name != "cam-1" {
				t.Fatalf("GetHostname = %q, %v; the server saw %v", name, err, seen)
			}
			want := strings.Split(tc.qop, ",")[0]
			if last := seen[len(seen)-1]; last["qop"] != want || last["cnonce"] == "" {
				t.Errorf("answer %v, want qop %s with a client nonce", last, want)
			}
		})
	}
}
