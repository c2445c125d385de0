package camsim

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	nsSoap   = "http://www.w3.org/2003/05/soap-envelope"
	nsDevice = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia  = "http://www.onvif.org/ver10/media/wsdl"
	nsMedia2 = "http://www.onvif.org/ver20/media/wsdl"
	nsPTZ    = "http://www.onvif.org/ver20/ptz/wsdl"
	nsSchema = "http://www.onvif.org/ver10/schema"
	nsError  = "http://www.onvif.org/ver10/error"

	spacePT   = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
	spaceZoom = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
	spacePTSp = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace"
	spaceZSp  = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace"

	maxRequest = 1 << 20
)

// Requests PRE_AUTH per the ONVIF access policy defaults.
var preAuth = map[string]bool{
	"GetSystemDateAndTime": true, "GetCapabilities": true, "GetServices": true,
	"GetServiceCapabilities": true, "GetWsdlUrl": true, "GetEndpointReference": true,
}

// --- request model (decoded on local names) -------------------------------

type reqVec2 struct {
	X     float64 `xml:"x,attr"`
	Y     float64 `xml:"y,attr"`
	Space string  `xml:"space,attr"`
}

type reqVec1 struct {
	X     float64 `xml:"x,attr"`
	Space string  `xml:"space,attr"`
}

type reqVector struct {
	PanTilt *reqVec2 `xml:"PanTilt"`
	Zoom    *reqVec1 `xml:"Zoom"`
}

type reqRange struct {
	URI    string `xml:"URI"`
	XRange struct {
		Min string `xml:"Min"`
		Max string `xml:"Max"`
	} `xml:"XRange"`
	YRange *struct {
		Min string `xml:"Min"`
		Max string `xml:"Max"`
	} `xml:"YRange"`
}

type reqArgs struct {
	XMLName               xml.Name
	ProfileToken          string     `xml:"ProfileToken"`
	PresetToken           string     `xml:"PresetToken"`
	PresetName            string     `xml:"PresetName"`
	ConfigurationToken    string     `xml:"ConfigurationToken"`
	PTZConfigurationToken string     `xml:"PTZConfigurationToken"`
	NodeToken             string     `xml:"NodeToken"`
	Token                 string     `xml:"Token"`
	Position              *reqVector `xml:"Position"`
	Speed                 *reqVector `xml:"Speed"`
	Raw                   string     `xml:",innerxml"` // for requests modelled elsewhere (events.go)
	Mask                  *struct {
		Token              string `xml:"token,attr"`
		ConfigurationToken string `xml:"ConfigurationToken"`
		Polygon            struct {
			Point []struct {
				X float64 `xml:"x,attr"`
				Y float64 `xml:"y,attr"`
			} `xml:"Point"`
		} `xml:"Polygon"`
		Type  string `xml:"Type"`
		Color *struct {
			X float64 `xml:"X,attr"`
			Y float64 `xml:"Y,attr"`
			Z float64 `xml:"Z,attr"`
		} `xml:"Color"`
		Enabled string `xml:"Enabled"`
	} `xml:"Mask"`
	PTZConfiguration *struct {
		Token         string `xml:"token,attr"`
		PanTiltLimits *struct {
			Range reqRange `xml:"Range"`
		} `xml:"PanTiltLimits"`
		ZoomLimits *struct {
			Range reqRange `xml:"Range"`
		} `xml:"ZoomLimits"`
	} `xml:"PTZConfiguration"`
}

type reqEnvelope struct {
	Header struct {
		Security struct {
			UsernameToken *struct {
				Username string `xml:"Username"`
				Password struct {
					Type  string `xml:"Type,attr"`
					Value string `xml:",chardata"`
				} `xml:"Password"`
				Nonce   string `xml:"Nonce"`
				Created string `xml:"Created"`
			} `xml:"UsernameToken"`
		} `xml:"Security"`
	} `xml:"Header"`
	Body struct {
		Args reqArgs `xml:",any"`
	} `xml:"Body"`
}

// soapError is a fault to send.
type soapError struct {
	code     string // s:Sender / s:Receiver
	subcodes []string
	reason   string
}

func fault(subcode, reason string) *soapError {
	subs := strings.Split(subcode, "/")
	code := "s:Sender"
	if strings.Contains(subcode, "ActionNotSupported") || strings.Contains(subcode, "Receiver") {
		code = "s:Receiver"
	}
	return &soapError{code: code, subcodes: subs, reason: reason}
}

// --- HTTP handler ----------------------------------------------------------

func (c *Camera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/snapshot/") {
		c.serveSnapshot(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/camsim/") {
		c.serveControl(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil || len(body) > maxRequest {
		c.writeFault(w, fault("ter:InvalidArgs", "request too large or unreadable"))
		return
	}
	var env reqEnvelope
	if err := xml.Unmarshal(body, &env); err != nil || env.Body.Args.XMLName.Local == "" {
		c.writeFault(w, fault("ter:InvalidArgs", "malformed SOAP envelope"))
		return
	}
	args := &env.Body.Args
	action := args.XMLName.Local
	if !preAuth[action] {
		if ok := c.authenticate(w, r, &env); !ok {
			return
		}
	}
	if sub := c.fault(action); sub != "" {
		c.writeFault(w, fault(sub, "injected fault"))
		return
	}
	resp, ferr := c.dispatch(args.XMLName.Space, action, args, r)
	if ferr != nil {
		c.writeFault(w, ferr)
		return
	}
	c.writeBody(w, http.StatusOK, resp)
}

// authenticate checks WS-Security and/or HTTP digest according to the mode.
// It writes the refusal itself and returns false when the request may not
// proceed.
func (c *Camera) authenticate(w http.ResponseWriter, r *http.Request, env *reqEnvelope) bool {
	mode := c.cfg.Auth
	if mode == AuthNone {
		return true
	}
	ut := env.Header.Security.UsernameToken
	if mode == AuthDigest || mode == AuthEither {
		if h := r.Header.Get("Authorization"); h != "" {
			if c.checkDigest(h, r) {
				return true
			}
			c.challenge(w, false)
			return false
		}
	}
	if (mode == AuthWSSE || mode == AuthEither) && ut != nil {
		if reason := c.checkWSSE(ut.Username, ut.Password.Type, ut.Password.Value, ut.Nonce, ut.Created); reason != "" {
			c.logf("camsim %s: %s refused: %s", c.cfg.ID, env.Body.Args.XMLName.Local, reason)
			c.writeFault(w, fault("ter:NotAuthorized", "Sender not Authorized: "+reason))
			return false
		}
		return true
	}
	if mode == AuthWSSE {
		c.writeFault(w, fault("ter:NotAuthorized", "Sender not Authorized"))
		return false
	}
	c.challenge(w, false)
	return false
}

func (c *Camera) checkWSSE(user, ptype, password, nonceB64, created string) string {
	if user != c.cfg.Username {
		return "unknown user"
	}
	if !strings.HasSuffix(ptype, "#PasswordDigest") {
		return "password type not supported"
	}
	nonce, err := base64.StdEncoding.DecodeString(strings.TrimSpace(nonceB64))
	if err != nil || len(nonce) < 8 {
		return "bad nonce"
	}
	created = strings.TrimSpace(created)
	ct, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return "bad Created"
	}
	now := c.Clock()
	window := time.Duration(c.cfg.ClockWindow)
	if d := ct.Sub(now); d > window || d < -window {
		return "Created outside the clock window"
	}
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(c.cfg.Password))
	if base64.StdEncoding.EncodeToString(h.Sum(nil)) != strings.TrimSpace(password) {
		return "bad digest"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.nonces[nonceB64]; seen && c.cfg.ReplayProtection {
		return "nonce replayed"
	}
	for n, t := range c.nonces {
		if time.Since(t) > 10*time.Minute {
			delete(c.nonces, n)
		}
	}
	c.nonces[nonceB64] = time.Now()
	return ""
}

// --- reply writing ------------------------------------------------------------

var prefixRE = regexp.MustCompile(`(</?|>)(tds|trt|tr2|tptz|tt|s|ter):`)

var vendorPrefix = map[string]string{"tds": "dev", "trt": "med", "tr2": "m2", "tptz": "p", "tt": "sch", "s": "SOAP-ENV", "ter": "err"}

func (c *Camera) envelope(body string) []byte {
	pre := func(p string) string { return p }
	if c.cfg.Quirk.VendorNamespaces {
		pre = func(p string) string { return vendorPrefix[p] }
		body = prefixRE.ReplaceAllStringFunc(body, func(m string) string {
			sm := prefixRE.FindStringSubmatch(m)
			return sm[1] + vendorPrefix[sm[2]] + ":"
		})
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<%s:Envelope xmlns:%s="%s" xmlns:%s="%s" xmlns:%s="%s" xmlns:%s="%s" xmlns:%s="%s" xmlns:%s="%s" xmlns:%s="%s">`,
		pre("s"), pre("s"), nsSoap, pre("tds"), nsDevice, pre("trt"), nsMedia, pre("tr2"), nsMedia2,
		pre("tptz"), nsPTZ, pre("tt"), nsSchema, pre("ter"), nsError)
	fmt.Fprintf(&b, `<%s:Body>%s</%s:Body></%s:Envelope>`, pre("s"), body, pre("s"), pre("s"))
	return b.Bytes()
}

func (c *Camera) writeBody(w http.ResponseWriter, status int, body string) {
	data := c.envelope(body)
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	if c.cfg.Quirk.Chunked {
		w.WriteHeader(status)
		half := len(data) / 2
		_, _ = w.Write(data[:half])
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // forces Transfer-Encoding: chunked
		}
		_, _ = w.Write(data[half:])
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (c *Camera) writeFault(w http.ResponseWriter, f *soapError) {
	var b strings.Builder
	b.WriteString(`<s:Fault><s:Code><s:Value>` + f.code + `</s:Value>`)
	for _, s := range f.subcodes {
		b.WriteString(`<s:Subcode><s:Value>` + esc(s) + `</s:Value>`)
	}
	for range f.subcodes {
		b.WriteString(`</s:Subcode>`)
	}
	b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en">` + esc(f.reason) + `</s:Text></s:Reason></s:Fault>`)
	status := http.StatusBadRequest
	if f.code == "s:Receiver" {
		status = http.StatusInternalServerError
	}
	c.writeBody(w, status, b.String())
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func ff(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func parseXSFloat(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "INF":
		return math.Inf(1), nil
	case "-INF":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}
