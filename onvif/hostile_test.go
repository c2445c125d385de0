package onvif_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"velo/onvif"
)

// A hostile or broken camera never crashes the client and never makes it
// read or allocate without bound.
func TestHostileReplies(t *testing.T) {
	okEnv := func(body string) string {
		return `<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>` + body + `</s:Body></s:Envelope>`
	}
	deep := strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000)
	cases := []struct {
		name   string
		status int
		write  func(w http.ResponseWriter)
		want   error
	}{
		{"doctype entity", 200, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>` +
				`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetHostnameResponse><HostnameInformation><Name>&lol2;</Name></HostnameInformation></GetHostnameResponse></s:Body></s:Envelope>`))
		}, onvif.ErrMalformed},
		{"100 MB body", 200, func(w http.ResponseWriter) {
			chunk := []byte(strings.Repeat("<x>aaaaaaaaaaaaaaaaaaaaaaaaaaaa</x>", 1000))
			_, _ = w.Write([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetHostnameResponse>`))
			for n := 0; n < 100<<20; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return // client hung up: good
				}
			}
		}, onvif.ErrTooLarge},
		{"deep nesting", 200, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(okEnv(`<GetHostnameResponse>` + deep + `</GetHostnameResponse>`)))
		}, onvif.ErrMalformed},
		{"garbage", 200, func(w http.ResponseWriter) { _, _ = w.Write([]byte("\x00\x01HTTP garbage <<<>>>")) }, onvif.ErrMalformed},
		{"empty 200", 200, func(w http.ResponseWriter) {}, onvif.ErrMalformed},
		{"wrong element", 200, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(okEnv(`<GetPresetsResponse/>`)))
		}, onvif.ErrMalformed},
		{"500 without fault", 500, func(w http.ResponseWriter) { _, _ = w.Write([]byte("Internal error")) }, onvif.ErrMalformed},
		{"fault with HTTP 200", 200, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(okEnv(`<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code><s:Reason><s:Text>no</s:Text></s:Reason></s:Fault>`)))
		}, onvif.ErrUnauthorized},
		{"SOAP 1.1 fault", 500, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>Optional Action Not Implemented</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`))
		}, onvif.ErrNotSupported},
		{"401 without challenge", 401, func(w http.ResponseWriter) {}, onvif.ErrUnauthorized},
		{"processing instruction", 200, func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`<?xml version="1.0"?><?xml-stylesheet href="x"?>` + okEnv(`<GetHostnameResponse/>`)[len(`<?xml version="1.0"?>`):]))
		}, onvif.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				tc.write(w)
			}))
			defer srv.Close()
			c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL, Username: "u", Password: "p", Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = c.GetHostname(ctxT(t))
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB for one reply", alloc>>20)
			}
		})
	}
}

func TestClientHonoursContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, err := onvif.NewClient(onvif.Config{XAddr: srv.URL, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.GetSystemDateAndTime(ctxT(t)); err == nil {
		t.Fatal("no error from a camera that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestNewClientRejectsBadXAddr(t *testing.T) {
	for _, x := range []string{"", "ftp://x/", "http://", "http://admin:pw@192.0.2.1/onvif"} {
		_, err := onvif.NewClient(onvif.Config{XAddr: x})
		if err == nil {
			t.Errorf("%q accepted", x)
			continue
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error leaks credentials: %v", err)
		}
	}
}
